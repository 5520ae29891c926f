"""A reference run's features and losses for selection, each checked against a forward pass written out by hand.

Two tiny mnist-vqa runs (LLaVA and ASCII, random init: what is under test is which positions and
tokens are read, not what the model learned) are saved through the real training loop with its fit
replaced by a recorder. The hand computations build their inputs from the chat template and the
processor directly, not through the task code the features use.
"""
from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest
import torch

from mistral_vision.config import load_config, load_run_config
from mistral_vision.data.questions import Item, QuestionSet
from mistral_vision.data.run_data import load_questions
from mistral_vision.errors import UserError
from mistral_vision.select import feature_cache, features
from mistral_vision.select.features import check_run_fits, run_features, run_losses
from tests.conftest import tiny_overrides, write_dataset
from tests.train.test_stage_templates import TINY_LLAVA, record_stages

VQA = {"data.dataset": "mnist-vqa", "data.train_canvases": 12, "data.valid_canvases": 2, "data.test_canvases": 2,
       "data.turns": 2, "model.sliding_window": 512, "prompt.system": "Be brief."}
ROUTES = {"llava": {**TINY_LLAVA, "vision.image_size": 56, "vision.patch_size": 14},
          "ascii": {"ascii.width": 14, "ascii.height": 14, "ascii.crop": 0}}
QUIET = dict(log=lambda *_: None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{route: (run dir, its training conversations)}, saved once for the module."""
    root = tmp_path_factory.mktemp("select-runs")
    write_dataset(root / "data", "mnist", n_train=200, n_test=0)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        mp.chdir(root)
        for route, extra in ROUTES.items():
            cfg = load_config(None, tiny_overrides(root / "data", name=route, runs_dir=root / "runs", **VQA, **extra))
            record_stages(cfg)
            out[route] = (cfg.run_dir, load_questions(cfg.data, "train", conversations=True))
    return out


@functools.lru_cache(maxsize=None)
def loaded(run):
    """(config, model, processor) of a run, loaded once (the hand computations only read them)."""
    from mistral_vision.models.build import load_run_model

    cfg = load_run_config(run)
    model, proc, _ = load_run_model(run / "model", cfg=cfg)
    return cfg, model, proc


def hand_inputs(run, qs, k: int, upto: int | None = None):
    """(model, tokenizer, input ids (1, T), extras, art) of item ``k``: the chat template applied to its turns by
    hand (the image as the processor's expanded ``<image>`` or as ``render_ascii``'s art); the whole
    conversation, or with ``upto`` the prompt of turn ``upto`` (an answer): the turns before it and the
    generation prompt."""
    from mistral_vision.ascii.render import render_ascii

    cfg, model, proc = loaded(run)
    tok = getattr(proc, "tokenizer", proc)
    it = qs.items[k]
    img = qs.images[it.image]
    turns = it.turns if upto is None else it.turns[:upto]
    art = None if cfg.route == "llava" else render_ascii(img[None], cfg.ascii.width, cfg.ascii.height,
                                                        cfg.ascii.ramp, cfg.ascii.invert, cfg.ascii.crop)[0]
    msgs = [{"role": "system", "content": cfg.prompt.system}] + [
        {"role": "user" if r == "human" else "assistant", "content": t if art is None else t.replace("<image>", art)}
        for r, t in turns]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=upto is not None)
    if cfg.route == "llava":
        enc = proc(text=[text], images=[img[None]], add_special_tokens=False, return_tensors="pt")
        return model, tok, enc["input_ids"], {"pixel_values": enc["pixel_values"]}, art
    return model, tok, torch.tensor([tok(text, add_special_tokens=False)["input_ids"]]), {}, art


def conversation_item(qs) -> int:
    """An item with two exchanges, so that its last answer is not its first."""
    return next(k for k, it in enumerate(qs.items) if len(it.turns) == 4)


# -- shapes and values against hand computations ------------------------------------------------
@pytest.mark.parametrize("route", ["llava", "ascii"])
def test_answer_hidden_is_the_state_before_the_last_answer(runs, route, tmp_path):
    run, qs = runs[route]
    feats = run_features(run, qs, "answer-hidden", tmp_path, batch_size=5, **QUIET)
    d = load_run_config(run).model.hidden_size
    assert feats.shape == (len(qs.items), d) and feats.dtype == torch.float32
    k = conversation_item(qs)
    model, _, ids, extras, _ = hand_inputs(run, qs, k, upto=len(qs.items[k].turns) - 1)
    with torch.no_grad():
        want = model(input_ids=ids, **extras, output_hidden_states=True).hidden_states[-1][0, -1]
    torch.testing.assert_close(feats[k], want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(feats[k], feats[k - 1], atol=1e-3)        # rows are per item


@pytest.mark.parametrize("route", ["llava", "ascii"])
def test_image_mean_averages_the_image_positions(runs, route, tmp_path):
    run, qs = runs[route]
    feats = run_features(run, qs, "image-mean", tmp_path, batch_size=5, **QUIET)
    assert feats.shape == (len(qs.items), load_run_config(run).model.hidden_size)
    k = conversation_item(qs)
    model, tok, ids, extras, art = hand_inputs(run, qs, k)
    with torch.no_grad():
        hidden = model(input_ids=ids, **extras, output_hidden_states=True).hidden_states[-1][0]
    if route == "llava":
        where = ids[0] == model.config.image_token_id
        assert where.sum() == 16                                    # (56 / 14)^2 patches
    else:                                # the tiny tokenizer is one token per character: <s>, system + "\n", art
        assert tok.convert_ids_to_tokens(ids[0, :2].tolist()) == ["<s>", "B"]
        start = 1 + len("Be brief.\n")
        where = torch.zeros(ids.shape[1], dtype=torch.bool)
        where[start:start + len(art)] = True
        assert tok.decode(ids[0, where]) == art
    torch.testing.assert_close(feats[k], hidden[where].mean(0), atol=1e-5, rtol=1e-5)


def test_tower_pooled_is_the_towers_pooler_output(runs, tmp_path):
    run, qs = runs["llava"]
    feats = run_features(run, qs, "tower-pooled", tmp_path, batch_size=5, **QUIET)
    cfg, model, proc = loaded(run)
    assert feats.shape == (len(qs.items), cfg.vision.hidden_size)
    for k in (0, conversation_item(qs)):
        img = qs.images[qs.items[k].image]
        pixels = proc.image_processor(images=[img[None]], return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            want = model.model.vision_tower(pixel_values=pixels).pooler_output[0]
        torch.testing.assert_close(feats[k], want, atol=1e-5, rtol=1e-5)
    same = [k for k, it in enumerate(qs.items) if it.image == qs.items[0].image]
    assert len(same) > 1 and all(torch.equal(feats[k], feats[0]) for k in same)   # one row per image


def test_a_tower_without_a_pooler_gives_the_mean_of_its_selected_features(data_dir):
    from mistral_vision.models.build import build_run_model

    cfg = load_config(None, tiny_overrides(data_dir, **{**ROUTES["llava"], "vision.tower": "siglip-tiny"}))
    model, _ = build_run_model(cfg, cfg.run_dir, log=lambda *_: None)
    pixels = torch.randn(3, 1, 56, 56)
    with torch.no_grad():
        got = features.tower_pooled(model.eval(), pixels)
        hidden = model.model.vision_tower(pixel_values=pixels, output_hidden_states=True).hidden_states
    assert cfg.vision.feature_layer == -2                          # SigLIP's strategy is full: no token dropped
    torch.testing.assert_close(got, hidden[-2].mean(1))


@pytest.mark.parametrize("route", ["llava", "ascii"])
def test_loss_is_the_training_loss_of_the_item_alone(runs, route, tmp_path):
    from mistral_vision.infer.loading import load_for_inference
    from mistral_vision.train.batches import answer_loss

    run, qs = runs[route]
    losses = run_losses(run, qs, "loss", tmp_path, batch_size=5, **QUIET)
    assert losses.shape == (len(qs.items),)
    task = load_for_inference(load_run_config(run), run).task
    model = loaded(run)[1]
    for k in (0, conversation_item(qs)):
        batch = task.conversation_examples([qs.items[k]], qs.images).batch([0], task.pad_id)
        with torch.no_grad():
            want = answer_loss(model, batch, "token").loss
        torch.testing.assert_close(losses[k], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("route", ["llava", "ascii"])
def test_el2n_is_the_mean_error_norm_over_answer_tokens(runs, route, tmp_path):
    run, qs = runs[route]
    el2n = run_losses(run, qs, "el2n", tmp_path, batch_size=5, **QUIET)
    k = conversation_item(qs)
    model, tok, ids, extras, _ = hand_inputs(run, qs, k)
    # the answer tokens, from the conversation without each answer: what follows each generation prompt
    answers = []
    for j in (1, 3):
        before = hand_inputs(run, qs, k, upto=j)[2].shape[1]
        n_answer = len(tok(qs.items[k].turns[j][1] + tok.eos_token, add_special_tokens=False)["input_ids"])
        answers += range(before, before + n_answer)
    with torch.no_grad():
        probs = torch.softmax(model(input_ids=ids, **extras).logits[0].float(), -1)
    norms = [torch.linalg.vector_norm(probs[t - 1] - torch.nn.functional.one_hot(ids[0, t], probs.shape[-1]))
             for t in answers]
    torch.testing.assert_close(el2n[k], torch.stack(norms).mean(), atol=1e-5, rtol=1e-5)
    assert ((el2n > 0) & (el2n <= 2 ** 0.5)).all()


# -- batches, determinism, cache ---------------------------------------------------------------
@pytest.mark.parametrize("route,what", [("llava", "image-mean"), ("ascii", "answer-hidden"), ("llava", "el2n")])
def test_padding_and_batch_size_do_not_change_rows_and_reruns_are_bitwise_equal(runs, route, what, tmp_path):
    run, qs = runs[route]
    qs = qs.subset(12)                                              # captions and conversations: lengths differ
    get = run_losses if what in features.MEASURES else run_features
    one = get(run, qs, what, tmp_path / "a", batch_size=1, **QUIET)
    eight = get(run, qs, what, tmp_path / "b", batch_size=8, **QUIET)
    again = get(run, qs, what, tmp_path / "c", batch_size=8, **QUIET)
    torch.testing.assert_close(one, eight, atol=1e-5, rtol=1e-5)
    assert torch.equal(eight, again)


def test_a_killed_run_resumes_from_its_shards_and_a_complete_cache_needs_no_model(runs, tmp_path, monkeypatch):
    run, qs = runs["llava"]
    monkeypatch.setattr(feature_cache, "SHARD_ITEMS", 10)                 # 24 items: shards of 10, 10, 4
    computed = []
    real = features.Extractor.rows
    monkeypatch.setattr(features.Extractor, "rows", lambda self, q, lo, hi: computed.append((lo, hi))
                        or real(self, q, lo, hi))
    first = run_features(run, qs, "answer-hidden", tmp_path, **QUIET)
    assert computed == [(0, 10), (10, 20), (20, 24)]
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "shard-00000.pt", "shard-00001.pt",
                                                        "shard-00002.pt"]
    (folder / "shard-00002.pt").unlink()                               # killed before the last shard was written
    computed.clear()
    lines = []
    assert torch.equal(run_features(run, qs, "answer-hidden", tmp_path, log=lines.append), first)
    assert computed == [(20, 24)] and "(20 cached)" in lines[0] and "items/s" in lines[-1]

    import mistral_vision.infer.loading as loading

    def no_model(*a, **k):
        raise AssertionError("the model was loaded although the cache is complete")

    monkeypatch.setattr(loading, "load_for_inference", no_model)
    assert torch.equal(run_features(run, qs, "answer-hidden", tmp_path, **QUIET), first)
    changed = QuestionSet(qs.name, qs.images, [qs.items[0]] + qs.items[1:], qs.label_names)
    changed.items[0] = Item(qs.items[0].id, qs.items[0].image, [("human", "<image>\nWhat?"), ("gpt", "7")], "x")
    with pytest.raises(AssertionError, match="cache is complete"):      # other data: another key, computed anew
        run_features(run, changed, "answer-hidden", tmp_path, **QUIET)


# -- refusals: one line each -------------------------------------------------------------------
def one_line(call, match: str):
    with pytest.raises(UserError, match=match) as e:
        call()
    assert "\n" not in str(e.value)


def items_about(images, text="<image>\nHow many digits?") -> QuestionSet:
    return QuestionSet("mine", list(images), [Item(f"s{i}", i, [("human", text), ("gpt", "2")], "count")
                                             for i in range(len(images))])


def test_every_refusal_is_one_line(runs, tmp_path):
    llava, qs = runs["llava"]
    ascii_run, _ = runs["ascii"]
    canvas = np.zeros((56, 56), np.uint8)
    one_line(lambda: run_features(ascii_run, qs, "tower-pooled", tmp_path), r"^tower-pooled features need a "
             r"vision tower; run ascii is on route ascii \(use image-mean or answer-hidden\)$")
    one_line(lambda: run_features(llava, qs, "clip-score", tmp_path), "^unknown feature kind 'clip-score'; known: "
             "answer-hidden, image-mean, tower-pooled$")
    one_line(lambda: run_losses(llava, qs, "perplexity", tmp_path), "^unknown loss measure 'perplexity'; known: "
             "el2n, loss$")
    one_line(lambda: run_losses(llava, qs, "loss", tmp_path, batch_size=0), "^batch size must be >= 1, not 0$")
    text_only = QuestionSet("txt", [], [Item("t0", -1, [("human", "Hi?"), ("gpt", "yes")], "open")])
    one_line(lambda: run_features(llava, text_only, "image-mean", tmp_path), "txt: no sample has an image")
    one_line(lambda: check_run_fits(tmp_path / "nowhere", qs), "not a run directory")
    for route, run in (("llava", llava), ("ascii", ascii_run)):
        one_line(lambda: check_run_fits(run, items_about([np.zeros((28, 28), np.uint8)])),
                 rf"^mine: sample 's0' has a 28x28 px image, but run {route} was trained on 56x56 images \(mnist-vqa\)")
        one_line(lambda: check_run_fits(run, items_about([canvas], "<image>\nCombien de chiffres ? é")),
                 rf"^mine: sample 's0' \(run {route}'s tokenizer\): character 'é' at position 23 is not in the "
                 "tokenizer's alphabet")
    rgb = np.zeros((56, 56, 3), np.uint8)
    one_line(lambda: check_run_fits(ascii_run, items_about([canvas, rgb])),
             r"^mine: sample 's1' has an RGB image, but run ascii \(route ascii\) reads images as ASCII art")
    check_run_fits(llava, items_about([canvas, rgb]))                   # a tower's processor takes RGB as well
    check_run_fits(llava, text_only)                                    # and text alone

    broken = tmp_path / "broken"
    shutil.copytree(llava, broken)
    weights = broken / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    one_line(lambda: check_run_fits(broken, qs), "model.safetensors: truncated or corrupt")
    shutil.rmtree(broken / "model")
    one_line(lambda: run_features(broken, qs, "answer-hidden", tmp_path), "no trained model here")


def test_json_images_are_sized_from_their_headers(runs, tmp_path):
    from PIL import Image

    from mistral_vision.data.questions import LazyImages

    llava, _ = runs["llava"]
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(tmp_path / "a.png")
    qs = QuestionSet("sqa", LazyImages(tmp_path, ["a.png", "gone.png"]),
                     [Item("q0", 0, [("human", "<image>\nWhat?"), ("gpt", "A")], "open")])
    one_line(lambda: check_run_fits(llava, qs), r"^sqa: sample 'q0' has a 30x40 px image, but run llava was "
                                                r"trained on 56x56")
    qs.items[0].image = 1
    one_line(lambda: check_run_fits(llava, qs), f'^image "gone.png" not found in {tmp_path}$')


def test_samples_without_an_image_get_zero_rows_even_a_whole_shard_of_them(runs, tmp_path, monkeypatch):
    run, qs = runs["llava"]
    monkeypatch.setattr(feature_cache, "SHARD_ITEMS", 2)
    text = [Item("t0", -1, [("human", "Hi?"), ("gpt", "yes")], "open"), Item("t1", -1, [("human", "Ho?"),
                                                                                    ("gpt", "no")], "open")]
    mixed = QuestionSet("mixed", qs.images, text + qs.items[:2], qs.label_names)
    for kind in ("tower-pooled", "image-mean"):
        feats = run_features(run, mixed, kind, tmp_path, **QUIET)
        assert feats[:2].abs().sum() == 0 and (feats[2:].abs().sum(-1) > 0).all()
        torch.testing.assert_close(feats[2:], run_features(run, qs, kind, tmp_path, **QUIET)[:2])
