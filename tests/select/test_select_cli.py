"""``mistral-vision select`` end to end: a tiny LLaVA JSON made here and a tiny mnist-vqa pool; the same command
twice gives a byte-identical selection.json for every method; bad input is one line, exit 2, nothing written."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mistral_vision.cli import main
from mistral_vision.config import SELECT_METHODS
from mistral_vision.errors import UserError
from mistral_vision.select import features


def llava_files(root, n: int = 12):
    """``pool.json`` of n questions (every third text-only, a subject each) and its image folder ``img``."""
    from PIL import Image

    (root / "img").mkdir()
    samples = []
    for i in range(n):
        opts = "(A) x (B) y" + (" (C) z" if i % 2 else "")
        s = {"id": f"s{i}", "conversations": [
            {"from": "human", "value": ("<image>\n" if i % 3 else "") + f"Question {i}?\nOptions: {opts}"},
            {"from": "gpt", "value": "The answer is A."}], "subject": ["bio", "phys", "chem"][i % 3]}
        if i % 3:
            Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(root / "img" / f"{i}.png")
            s["image"] = f"{i}.png"
        samples.append(s)
    (root / "pool.json").write_text(json.dumps(samples))
    return root / "pool.json", root / "img"


@pytest.fixture
def fake_run(monkeypatch, tmp_path):
    """A reference run folder whose features are fixed functions of the pool's items."""
    import torch

    ref = tmp_path / "ref"
    ref.mkdir()

    def emb(qset):
        return torch.tensor([[float(i % 5), float((i * 7) % 11)] for i in range(len(qset.items))])

    monkeypatch.setattr(features, "check_run_fits", lambda run_dir, qset: None)
    monkeypatch.setattr(features, "run_features", lambda run_dir, qset, kind, **kw: emb(qset))
    monkeypatch.setattr(features, "run_losses",
                        lambda run_dir, qset, measure="loss", **kw: emb(qset).sum(1) / 3)
    return ref


ARGS = {"random": [], "stratified": ["--field", "subject"], "handpicked": [], "loss": ["--band", "ccs", "--bins", "3"],
        "kcenter": [], "clusters": ["--clusters", "2"]}


@pytest.mark.parametrize("method", list(SELECT_METHODS))
def test_the_same_command_twice_gives_a_byte_identical_selection(method, tmp_path, fake_run, capsys):
    pool, img = llava_files(tmp_path)
    run = ["--from-run", str(fake_run)] if method in ("loss", "kcenter", "clusters") else []
    outs = []
    for k in range(2):
        out = tmp_path / f"out{k}"
        assert main(["select", str(pool), "--image-folder", str(img), "--method", method, "--keep", "4",
                     "--seed", "1", "--out", str(out)] + ARGS[method] + run) == 0
        outs.append(out)
    a, b = ((o / "selection.json").read_bytes() for o in outs)
    assert a == b
    m = json.loads(a)
    assert m["method"] == method and m["seed"] == 1 and m["keep"] == {"asked": 4, "count": 4} and len(m["ids"]) == 4
    assert m["source"]["sha256"] == __import__("hashlib").sha256(pool.read_bytes()).hexdigest()
    assert m["source"]["pool"] == 12 and len(m["scores"]) == 4
    assert "seconds" in json.loads((outs[0] / "selection-timing.json").read_text())      # time kept apart
    subset = json.loads((outs[0] / "train.json").read_text())
    raw = {s["id"]: s for s in json.loads(pool.read_text())}
    assert [s["id"] for s in subset] == sorted(m["ids"], key=lambda i: int(i[1:]))       # pool order
    assert all(s == raw[s["id"]] for s in subset)          # the samples as written: original image paths, no copies
    assert not (outs[0] / "images").exists()


def test_a_subset_trains_from_the_original_image_folder(tmp_path, capsys):
    from mistral_vision.data.questions import from_llava_json

    pool, img = llava_files(tmp_path)
    assert main(["select", str(pool), "--image-folder", str(img), "--method", "handpicked", "--keep", "3",
                 "--out", str(tmp_path / "o")]) == 0
    qs = from_llava_json(tmp_path / "o" / "train.json", img)
    assert len(qs) == 3 and all(it.image >= 0 for it in qs.items)      # handpicked: image questions only


def test_a_tiny_mnist_vqa_pool_writes_its_chosen_images_once(data_dir, tmp_path, capsys):
    from mistral_vision.data.questions import from_llava_json

    args = ["select", "mnist-vqa", "--data-dir", str(data_dir), "--offline", "--set", "valid_size=100",
            "--set", "train_canvases=6", "--method", "stratified", "--keep", "4", "--allocation", "balanced"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / "selection.json").read_bytes()
    assert a == (tmp_path / "b" / "selection.json").read_bytes()
    m = json.loads(a)
    assert m["source"]["pool"] == 12 and m["source"]["settings"]["train_canvases"] == 6
    assert sorted(m["groups"]) == ["caption", "caption", "conversation", "conversation"]
    qs = from_llava_json(tmp_path / "a" / "train.json", tmp_path / "a" / "images")
    assert sorted(it.id for it in qs.items) == sorted(m["ids"]) and qs.images[0].shape == (56, 56)
    written = sorted(p.name for p in (tmp_path / "a" / "images" / "train").iterdir())
    assert len(written) == len({it.image for it in qs.items}) <= 4        # the chosen canvases only


def test_a_classification_dataset_is_a_pool_of_one_question_per_image(data_dir, tmp_path, capsys):
    assert main(["select", "mnist", "--data-dir", str(data_dir), "--offline", "--set", "valid_size=100",
                 "--method", "stratified", "--field", "class", "--allocation", "balanced", "--keep", "20",
                 "--out", str(tmp_path / "o")]) == 0
    m = json.loads((tmp_path / "o" / "selection.json").read_text())
    assert m["source"]["pool"] == 500 and sorted(m["groups"]) == sorted([str(c) for c in range(10)] * 2)
    sample = json.loads((tmp_path / "o" / "train.json").read_text())[0]
    assert sample["conversations"][1]["value"] == sample["class"] and "Which mnist class" in \
        sample["conversations"][0]["value"]


@pytest.mark.parametrize("args,message", [
    (["--method", "bogus", "--keep", "3"], "--method 'bogus': unknown selection method; known: random, stratified, "
                                           "handpicked, loss, kcenter, clusters"),
    (["--method", "random", "--keep", "0"], "--keep 0: a count of examples"),
    (["--method", "random", "--keep", "-2"], "--keep -2: a count of examples"),
    (["--method", "random", "--keep", "13"], "--keep 13: larger than the pool, which has 12 examples"),
    (["--method", "random", "--keep", "0.01"], "--keep 0.01: keeps no example of a pool of 12"),
    (["--method", "random", "--keep", "ten"], "--keep 'ten': a count of examples or a fraction of the pool"),
    (["--method", "kcenter", "--keep", "3", "--from-run", "nowhere"], "--from-run nowhere: no such run folder"),
    (["--method", "stratified", "--keep", "3", "--field", "grade"], "field 'grade': no sample of .*pool.json has "
                                                                    "it; fields present: type, subject"),
    (["--method", "kcenter", "--keep", "3"], "selection method kcenter needs --from-run"),
    (["--method", "loss", "--keep", "3"], "selection method loss needs --from-run"),
    (["--method", "random", "--keep", "3", "--band", "ccs"], "--band is not a parameter of selection method random"),
    (["--method", "kcenter", "--keep", "3", "--from-run", "FITS-NOT"], "its tokenizer has no <image> token"),
    (["--method", "random", "--keep", "3", "--set", "grid=3"], "select --set is for the generated pools"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(args, message, tmp_path, capsys, monkeypatch):
    pool, img = llava_files(tmp_path)
    (tmp_path / "FITS-NOT").mkdir()

    def misfit(run_dir, qset):
        raise UserError(f"{run_dir}: its tokenizer has no <image> token")
    monkeypatch.setattr(features, "check_run_fits", misfit)
    args = [a.replace("FITS-NOT", str(tmp_path / "FITS-NOT")) for a in args]
    assert main(["select", str(pool), "--image-folder", str(img), "--out", str(tmp_path / "o")] + args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and __import__("re").search(message, err), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("extra,message", [
    (["--image-folder", "nowhere"], "image folder nowhere does not exist"),
    ([], "has an image but no --image-folder given"),
])
def test_a_missing_image_folder_is_refused(extra, message, tmp_path, capsys):
    pool, _ = llava_files(tmp_path)
    assert main(["select", str(pool), "--method", "random", "--keep", "2", "--out", str(tmp_path / "o")] + extra) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_data_that_is_neither_a_file_nor_a_dataset(tmp_path, capsys):
    assert main(["select", "mnist-vqq", "--method", "random", "--keep", "2", "--out", str(tmp_path / "o")]) == 2
    assert "mnist-vqq: no such file, and not a dataset id (known: fashion-mnist, fashion-vqa, mnist, mnist-vqa)" \
        in capsys.readouterr().err
