"""Training in stages: each freezes all but its parts, resumes on its own, and starts only from a finished stage."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mistral_vision.config import load_config
from mistral_vision.errors import UserError
from mistral_vision.pipeline import train_run
from mistral_vision.train.loop import train
from tests.conftest import tiny_overrides, train_killed_then_resumed

LLAVA = {"route": "llava", "vision.hidden_size": 32, "vision.num_layers": 2, "vision.num_heads": 4,
         "vision.intermediate_size": 64, "vision.patch_size": 7, "train.lr": 0.003}
TWO = "[{name: align, trainable: {projector: 0.003}, epochs: 1}, " \
      "{name: instruct, trainable: {projector: 0.003, vision: 0.003, llm: 0.003}, epochs: 2}]"


def llava(data_dir, name, **extra):
    return load_config(None, tiny_overrides(data_dir, name=name, **{**LLAVA, "stages": TWO, **extra}))


def _weights(run):
    return load_file(run / "model" / "model.safetensors")


def test_align_stage_trains_only_the_projector(data_dir, tmp_path):
    one = "[{name: align, trainable: {projector: 0.01}, epochs: 1}]"
    cfg = llava(data_dir, "align", stages=one)
    s = train(cfg, progress=False)
    assert [st["name"] for st in s["stages"]] == ["align"] and s["trainable_params"] > 0
    init = llava(data_dir, "init", stages="[{name: align, trainable: {projector: 0.01}, epochs: 0.01}]")
    torch.manual_seed(0)
    from mistral_vision.models.build import build_run_model
    from accelerate.utils import set_seed

    set_seed(init.train.seed)
    fresh, _ = build_run_model(init, tmp_path, log=lambda *_: None)
    before = {n: p.detach() for n, p in fresh.named_parameters()}
    from mistral_vision.models.build import load_run_model

    after, _, _ = load_run_model(cfg.run_dir / "model")
    changed = {n for n, p in after.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("multi_modal_projector" in n for n in changed)


def test_two_stages_learn_and_log_each_stage(data_dir):
    cfg = llava(data_dir, "two", **{"train.eval_every": 20, "train.eval_samples": 100,
                                   "train.loss_reduction": "token",
                                   "stages": "[{name: align, trainable: {projector: 0.003}, epochs: 1}, "
                                             "{name: instruct, trainable: {projector: 0.003, vision: 0.003, "
                                             "llm: 0.003}, epochs: 9}]"})
    s = train_run(cfg, progress=False)
    from mistral_vision.io import read_jsonl_tolerant

    log = read_jsonl_tolerant(cfg.run_dir / "metrics.jsonl")
    assert {r["stage"] for r in log} == {"align", "instruct"}
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == sorted(steps) and steps[-1] == s["steps"] == sum(st["steps"] for st in s["stages"])
    last = [r["valid_accuracy"] for r in log if "valid_accuracy" in r][-1]
    assert last > 0.3, last             # chance is 0.1, the majority class 0.16; an image-blind model stays there
    done = json.loads((cfg.run_dir / "stages" / "1-instruct" / "done.json").read_text())
    assert done["stage"]["trainable"] == {"projector": 0.003, "vision": 0.003, "llm": 0.003}


def test_init_from_a_missing_or_incompatible_stage_is_one_line(data_dir):
    cfg = llava(data_dir, "src", stages="[{name: align, trainable: {projector: 0.01}, epochs: 1}]")
    train(cfg, progress=False)
    missing = llava(data_dir, "m", stages="[{name: instruct, trainable: {llm: 0.01}, epochs: 1, "
                                           "init_from: nowhere/stages/0-align}]")
    with pytest.raises(UserError, match="no finished stage at nowhere/stages/0-align"):
        train(missing, progress=False)
    wider = llava(data_dir, "w", **{"model.hidden_size": 64, "stages": "[{name: instruct, trainable: {llm: 0.01}, "
                                    f"epochs: 1, init_from: {cfg.run_dir}/stages/0-align}}]"})
    with pytest.raises(UserError, match="does not fit this model .*multi_modal_projector"):
        train(wider, progress=False)
    ok = llava(data_dir, "ok", stages="[{name: instruct, trainable: {llm: 0.01}, epochs: 1, "
                                      f"init_from: {cfg.run_dir}/stages/0-align}}]")
    train(ok, progress=False)
    a, b = _weights(cfg.run_dir), _weights(ok.run_dir)
    proj = [k for k in a if "multi_modal_projector" in k]
    assert proj and all(torch.equal(a[k], b[k]) for k in proj)       # the aligned projector, kept frozen


@pytest.mark.slow
@pytest.mark.parametrize("stage_dir,step", [("0-align", 15), ("1-instruct", 10)])
def test_kill_9_in_either_stage_then_resume_matches_uninterrupted(data_dir, tmp_path, stage_dir, step):
    extra = {"train.save_every": 5, "train.log_every": 1}
    train(llava(data_dir, "ref", **extra), progress=False)
    over = tiny_overrides(data_dir, name="killed", **{**LLAVA, "stages": TWO, **extra})
    run, resumed = train_killed_then_resumed(tmp_path, over, stage_dir, step)
    assert (run / "stages" / "1-instruct" / "done.json").is_file()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _weights(tmp_path / "runs" / "ref"), _weights(run)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def _scores(model, task, imgs):
    from mistral_vision.infer.scorer import LabelScorer

    enc = task.encode(imgs)
    return LabelScorer(model.eval(), task.label_ids, task.pad_id, task.eos_id).score(enc.ids, enc.extras)


def test_checkpoints_with_lora_train_in_stages_and_export_merged(data_dir, tmp_path):
    """The GPU recipes' code path on CPU: checkpoint LLM + checkpoint RGB tower + LoRA + two stages + export."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from mistral_vision.export import export_run
    from mistral_vision.models.build import load_run_model
    from mistral_vision.tasks import make_task
    from tests.models.test_backbones import _local_checkpoint
    from tests.models.test_llava import local_tower

    ckpt = _local_checkpoint(tmp_path)
    tower_path, tower = local_tower(tmp_path)
    cfg = llava(data_dir, "ck", **{"model.backbone": f"hf:{ckpt}", "model.lora.enabled": "true", "model.lora.r": 4,
                                   "model.lora.alpha": 8, "model.lora.dropout": 0.0, "vision.tower": f"hf:{tower_path}",
                                   "data.train_limit": 160, "prompt.template": "ask",
                                   "stages": "[{name: align, trainable: {projector: 0.01}, epochs: 1}, "
                                             "{name: instruct, trainable: {projector: 0.001, llm-lora: 0.01}, epochs: 1}]"})
    s = train(cfg, progress=False)
    assert [st["trainable"] for st in s["stages"]] == [{"projector": 0.01}, {"projector": 0.001, "llm-lora": 0.01}]
    model, proc, manifest = load_run_model(cfg.run_dir / "model", cfg=cfg)
    assert manifest["parts"]["llm"]["lora"] and manifest["parts"]["vision_tower"]["checkpoint"] == str(tower_path)
    named = dict(model.named_parameters())
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in named.items())          # the adapter trained
    assert torch.equal(model.base_model.model.model.vision_tower.embeddings.patch_embedding.weight,
                       tower.embeddings.patch_embedding.weight)                       # the tower stayed frozen
    export_run(cfg.run_dir, tmp_path / "exp")
    merged = LlavaForConditionalGeneration.from_pretrained(tmp_path / "exp")
    names = tuple(str(d) for d in range(10))
    imgs = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    a = _scores(model, make_task(cfg, proc, names), imgs)
    b = _scores(merged, make_task(cfg, AutoProcessor.from_pretrained(tmp_path / "exp"), names), imgs)
    assert torch.allclose(a, b, atol=1e-4)


def test_a_lora_stage_starts_from_a_plain_stage_of_another_run(data_dir, tmp_path):
    """LLaVA-1.5's split: a plain "align" run, then a LoRA "instruct" run that starts from its projector."""
    from tests.models.test_backbones import _local_checkpoint

    ckpt = _local_checkpoint(tmp_path)
    common = {"model.backbone": f"hf:{ckpt}", "data.train_limit": 160}
    src = llava(data_dir, "plain-align", **common, stages="[{name: align, trainable: {projector: 0.01}, epochs: 1}]")
    train(src, progress=False)
    lora = llava(data_dir, "lora-instruct", **common, **{
        "model.lora.enabled": "true", "model.lora.r": 4, "model.lora.alpha": 8,
        "stages": "[{name: instruct, trainable: {llm-lora: 0.01}, epochs: 1, "
                  f"init_from: {src.run_dir}/stages/0-align}}]"})
    train(lora, progress=False)
    from mistral_vision.models.build import load_run_model

    a, _, _ = load_run_model(src.run_dir / "model", cfg=src)
    b, _, _ = load_run_model(lora.run_dir / "model", cfg=lora)
    pa = {n: p for n, p in a.named_parameters() if "multi_modal_projector" in n}
    pb = {n.replace("base_model.model.", "").replace(".modules_to_save.default", ""): p
          for n, p in b.named_parameters() if "multi_modal_projector.modules_to_save" in n}
    assert pa and pa.keys() == pb.keys() and all(torch.equal(pa[n], pb[n]) for n in pa)


def test_init_from_a_missing_stage_through_the_cli_writes_nothing(data_dir, tmp_path, capsys):
    from mistral_vision.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: bad\n")
    over = tiny_overrides(data_dir, name="bad", **{**LLAVA, "stages": "[{name: instruct, trainable: {llm: 0.01}, "
                                                                      "init_from: nowhere/stages/0-align}]"})
    assert main(["train", str(cfg)] + sum((["--set", o] for o in over), [])) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stages[0].init_from: no finished stage at nowhere/stages/0-align" in err
    assert not (tmp_path / "runs" / "bad").exists()


def test_test_time_views_on_the_llava_route_average_the_views(data_dir):
    from mistral_vision.data.augment import tta_views
    from mistral_vision.models.build import load_run_model
    from mistral_vision.io import read_jsonl_tolerant
    from mistral_vision.predict import predict
    from mistral_vision.tasks import make_task

    cfg = llava(data_dir, "tta", stages="[{name: all, trainable: {projector: 0.003, vision: 0.003, llm: 0.003}, "
                                        "epochs: 2}]")
    train(cfg, progress=False)
    r = predict(cfg.run_dir, "mnist", "valid", data_dir=str(data_dir), limit=12, progress=False, tta="shift4")
    assert r.path.name == "mnist-valid-tta-shift4.jsonl"
    probs = torch.tensor([rec["probs"] for rec in read_jsonl_tolerant(r.path)])
    model, proc, _ = load_run_model(cfg.run_dir / "model", cfg=cfg)
    task = make_task(cfg, proc, r.data.label_names)
    per_view = [torch.log_softmax(_scores(model, task, v(r.data.images)), -1) for v in tta_views("shift4")]
    assert torch.allclose(probs, torch.softmax(torch.stack(per_view).mean(0), -1), atol=1e-5)
    assert not torch.allclose(per_view[0], per_view[1], atol=1e-6)          # the views do differ
