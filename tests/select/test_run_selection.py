"""``data.select`` in a run config: the run trains on exactly the chosen ids, a spec is resolved into
RUN/selection/ before training (and kept in config.json, so compare and --resume see the spec), a stage may
train on a selection of its own file, and a selection made from other data is refused in one line."""
from __future__ import annotations

import json

import pytest

from mistral_vision.cli import main
from mistral_vision.config import load_config
from mistral_vision.errors import UserError
from tests.conftest import tiny_overrides
from tests.train.test_stage_templates import TINY_LLAVA, sqa_data, sqa_files

TWO = "stages=[{name: align, trainable: {projector: 0.01}}, {name: instruct, trainable: {projector: 0.01, llm: 0.01}}]"


def trained_on(cfg) -> dict:
    """``pipeline.train_run(cfg)`` with each stage's fit replaced by a recorder -> {stage name: its source}."""
    from mistral_vision.pipeline import train_run
    from mistral_vision.train import loop

    seen = {}

    def fit(cfg, acc, model, task, source, stage, index, *args):
        seen[stage.name] = source
        return {"name": stage.name, "steps": 1, "epochs": 1.0, "wall_s": 0.0, "trainable": dict(stage.trainable),
                "trainable_params": 0, "tokens_per_sample": None}

    real, loop._fit_stage = loop._fit_stage, fit
    try:
        train_run(cfg, progress=False)
    finally:
        loop._fit_stage = real
    return seen


def llava_cfg(data_dir, *extra):
    return load_config(None, tiny_overrides(data_dir, **TINY_LLAVA) + [TWO] + list(extra))


def test_a_selection_json_trains_on_exactly_its_ids(data_dir, tmp_path, capsys):
    folder = sqa_files(tmp_path)
    assert main(["select", str(folder / "train.json"), "--image-folder", str(folder / "images"), "--method",
                 "random", "--keep", "3", "--seed", "2", "--out", str(tmp_path / "sel")]) == 0
    chosen = json.loads((tmp_path / "sel" / "selection.json").read_text())["ids"]
    cfg = llava_cfg(data_dir, *sqa_data(folder), f"data.select={tmp_path / 'sel' / 'selection.json'}")
    seen = trained_on(cfg)
    for source in seen.values():
        assert [it.id for it in source.qset.items] == sorted(chosen, key=lambda i: int(i[1:]))
        assert len(source.epoch_examples(0)) == 3


def test_a_spec_is_resolved_into_the_run_and_kept_as_a_spec(data_dir, tmp_path, capsys):
    from mistral_vision.train.checkpoints import config_difference

    spec = "data.select={method: stratified, keep: 4, allocation: balanced}"
    cfg = llava_cfg(data_dir, "data.dataset=mnist-vqa", "vision.image_size=56", "data.train_canvases=6",
                    "data.valid_canvases=2", "data.test_canvases=2", "train.seed=3", spec)
    seen = trained_on(cfg)
    m = json.loads((cfg.run_dir / "selection" / "selection.json").read_text())
    assert m["seed"] == 3 and m["keep"]["count"] == 4 and m["source"]["pool"] == 12      # seed: train.seed
    assert sorted(m["groups"]) == ["caption", "caption", "conversation", "conversation"]
    for source in seen.values():
        assert sorted(it.id for it in source.qset.items) == sorted(m["ids"])
    assert not (cfg.run_dir / "selection" / "train.json").exists()          # the run reads the manifest
    saved = json.loads((cfg.run_dir / "config.json").read_text())["data"]["select"]
    assert saved["method"] == "stratified" and saved["keep"] == 4
    assert config_difference(cfg, cfg.run_dir) is None                      # compare / --resume compare specs
    from mistral_vision.select.selection import resolve_run_selection

    said = []
    resolve_run_selection(cfg, said.append)                                 # made earlier: reused, not redone
    assert "made earlier" in said[0]
    other = llava_cfg(data_dir, "data.dataset=mnist-vqa", "vision.image_size=56", "data.train_canvases=6",
                      "data.valid_canvases=2", "data.test_canvases=2", "train.seed=3",
                      "data.select={method: random, keep: 4}")
    with pytest.raises(UserError, match="was trained on another selection"):
        resolve_run_selection(other)


def test_a_classification_run_trains_on_the_chosen_images(data_dir, tmp_path, capsys):
    from mistral_vision.data.datasets import load_split

    cfg = llava_cfg(data_dir, "data.select={method: stratified, keep: 20, field: class, allocation: balanced}")
    seen = trained_on(cfg)
    m = json.loads((cfg.run_dir / "selection" / "selection.json").read_text())
    full = load_split("mnist", "train", data_dir, True, 100, 0)
    rows = sorted(int(i.rsplit("-", 1)[1]) for i in m["ids"])
    for source in seen.values():
        assert len(source) == 20 and (source.images == full.images[rows]).all()
        assert sorted(source.labels.tolist()) == sorted(list(range(10)) * 2)


def test_a_stage_trains_on_a_selection_of_its_own_file(data_dir, tmp_path, capsys):
    folder = sqa_files(tmp_path)
    assert main(["select", str(folder / "captions.json"), "--image-folder", str(folder / "images"), "--method",
                 "random", "--keep", "2", "--out", str(tmp_path / "sel")]) == 0
    chosen = json.loads((tmp_path / "sel" / "selection.json").read_text())["ids"]
    cfg = llava_cfg(data_dir, *sqa_data(folder), f"stages.0.data={tmp_path / 'sel' / 'selection.json'}",
                    "stages.0.template=plain")
    seen = trained_on(cfg)
    assert sorted(it.id for it in seen["align"].qset.items) == sorted(chosen)   # images from where it was made
    assert len(seen["instruct"].qset.items) == 6


def test_a_selection_made_from_other_data_is_refused_in_one_line(data_dir, tmp_path, capsys):
    from mistral_vision.data.run_data import load_questions

    folder = sqa_files(tmp_path)
    assert main(["select", str(folder / "train.json"), "--image-folder", str(folder / "images"), "--method",
                 "random", "--keep", "2", "--out", str(tmp_path / "sel")]) == 0
    samples = json.loads((folder / "train.json").read_text())
    (folder / "train.json").write_text(json.dumps(samples[:5]))            # the data changed since
    cfg = llava_cfg(data_dir, *sqa_data(folder), f"data.select={tmp_path / 'sel' / 'selection.json'}")
    want = r"selection.json: this selection was made from .*train.json \(sha256 [0-9a-f]{12}\.\.\.\), but"
    with pytest.raises(UserError, match=want) as e:
        trained_on(cfg)
    assert "\n" not in str(e.value) and not (cfg.run_dir / "config.json").exists()     # refused before training
    with pytest.raises(UserError, match=want):                                    # the loaders check it too
        load_questions(cfg.data, "train", True, selection=tmp_path / "sel" / "selection.json")


@pytest.mark.parametrize("value,message", [
    ("nowhere.json", "config data.select: nowhere.json: no such file"),
    ("{method: kmeans, keep: 3}", "config data.select.method 'kmeans': unknown selection method; known: random,"),
    ("{method: kcenter, keep: 3}", "selection method kcenter needs config data.select.from_run"),
    ("{method: random, keep: 1.5}", "config data.select.keep 1.5: a count of examples"),
    ("{method: random, keep: 3, embedding: tower-pooled}", "config data.select.embedding is not a parameter of "
                                                           "selection method random"),
    ("{method: loss, keep: 3, from_run: r, band: top}", "config data.select.band 'top': known: high, middle, ccs"),
])
def test_bad_selection_configs_are_one_line(value, message, data_dir):
    with pytest.raises(UserError) as e:
        load_config(None, [f"data.select={value}"])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_runs_on_different_selections_of_one_pool_learn_one_tokenizer(data_dir):
    """A selection study compares training examples alone: the BPE is learned from the whole pool, never from
    the subset (250 kept prompts would otherwise give each cell its own, poorer vocabulary)."""
    from mistral_vision.models.ascii_tokenizer import training_texts

    vqa = ["data.dataset=mnist-vqa", "vision.image_size=56", "data.train_canvases=6", "data.valid_canvases=2",
           "data.test_canvases=2", "tokenizer.kind=ascii-bpe", "tokenizer.split=words"]
    texts = [training_texts(llava_cfg(data_dir, *vqa, *sel), 1000) for sel in
             ([], ["data.select={method: random, keep: 2}"], ["data.select={method: random, keep: 3, seed: 5}"])]
    assert len(texts[0]) == 12 and texts[0] == texts[1] == texts[2]


def test_a_stage_left_smaller_than_one_batch_by_a_selection_trains_on_what_there_is(data_dir, capsys):
    """A small subset can keep fewer captions than one batch (handpicked 125 of mnist-vqa kept one): that stage
    trains on batches of what there is instead of stopping the run (batch 16 here; 7 captions, 13 in all)."""
    import json

    from mistral_vision.pipeline import train_run

    cfg = llava_cfg(data_dir, "data.dataset=mnist-vqa", "vision.image_size=56", "data.train_canvases=8",
                    "data.valid_canvases=2", "data.test_canvases=2", "train.eval_every=0",
                    "data.select={method: stratified, keep: 13, allocation: proportional}",
                    "stages=[{name: align, data: captions, trainable: {projector: 0.01}, epochs: 2},"
                    " {name: instruct, data: all, trainable: {projector: 0.01}, epochs: 1}]")
    summary = train_run(cfg, progress=True)
    out = capsys.readouterr().out
    assert "stage align: 7 training samples are fewer than one batch of 16 x 1 x 1; it trains on batches of 7" in out
    assert "stage instruct: 13 training samples are fewer than one batch of 16 x 1 x 1; it trains on batches of 13" in out
    steps = {s["name"]: s["steps"] for s in summary["stages"]}
    assert steps == {"align": 2, "instruct": 1}
    assert json.loads((cfg.run_dir / "train_summary.json").read_text())["stages"][0]["steps"] == 2


def test_stage_steps_give_subsets_of_any_size_the_same_compute(data_dir):
    """stages[i].steps fixes a stage's optimizer steps whatever its data's size (the selection study's matched
    compute): the same 2 + 3 steps on a subset of 13 examples and on the whole pool of 30 (15 captions)."""
    from mistral_vision.pipeline import train_run

    base = ["data.dataset=mnist-vqa", "vision.image_size=56", "data.train_canvases=15", "data.valid_canvases=2",
            "data.test_canvases=2", "train.eval_every=0",
            "stages=[{name: align, data: captions, trainable: {projector: 0.01}, steps: 2},"
            " {name: instruct, data: all, trainable: {projector: 0.01}, epochs: 1, steps: 3}]"]
    small = train_run(llava_cfg(data_dir, *base, "name=small",
                                "data.select={method: stratified, keep: 13, allocation: proportional}"))
    whole = train_run(llava_cfg(data_dir, *base, "name=whole"))
    assert [(s["name"], s["steps"]) for s in small["stages"]] == [("align", 2), ("instruct", 3)]
    assert [(s["name"], s["steps"]) for s in whole["stages"]] == [("align", 2), ("instruct", 3)]
    assert [s["epochs"] for s in whole["stages"]] == [2.0, 3.0]        # one batch per epoch: 15 (of 15), 16 of 30


@pytest.mark.parametrize("steps, says", [("0", "steps must be a whole number >= 1"),
                                         ("2.5", r"stages\[0\].steps: expected an integer, got 2.5"),
                                         ("true", r"stages\[0\].steps: expected an integer")])
def test_stage_steps_must_be_a_whole_number(data_dir, steps, says):
    with pytest.raises(UserError, match=says):
        llava_cfg(data_dir, "data.dataset=mnist-vqa", f"stages=[{{name: a, trainable: {{projector: 0.01}}, steps: {steps}}}]")


def test_run_refuses_a_selection_of_other_data_before_it_writes_anything(data_dir, tmp_path, capsys):
    """`mistral-vision run` on the ASCII route writes RUN/data before it trains: a selection.json made from
    another pool (here: another validation carve-out, so other training images) is refused before that."""
    assert main(["select", "mnist", "--data-dir", str(data_dir), "--offline", "--set", "valid_size=100",
                 "--method", "random", "--keep", "20", "--out", str(tmp_path / "sel")]) == 0
    (tmp_path / "c.yaml").write_text("name: x\n")
    capsys.readouterr()
    over = tiny_overrides(data_dir, **{"data.valid_size": 50, "runs_dir": tmp_path / "runs",
                                       "data.select": tmp_path / "sel" / "selection.json"})
    assert main(["run", str(tmp_path / "c.yaml")] + [a for o in over for a in ("--set", o)]) == 2
    err = capsys.readouterr().err.strip()
    assert "this selection was made from mnist" in err and "\n" not in err
    assert not (tmp_path / "runs").exists()
