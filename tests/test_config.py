from pathlib import Path

import pytest

from mistral_vision.config import load_config, to_dict
from mistral_vision.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def test_there_are_configs():
    names = {p.name for p in CONFIGS}
    assert {"demo.yaml", "mnist-ascii-cpu.yaml", "fashion-ascii-cpu.yaml"} <= names
    assert any("gpu" in p.parts for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_loads_and_says_how_to_run_it(path, tmp_path):
    from mistral_vision.compare.runner import is_spec, load_spec, plan

    first = path.read_text().splitlines()[0]
    assert first.startswith("# Run: ") and ("mistral-vision " in first or "mistral_vision.cli " in first)
    if is_spec(path):                       # a compare study: every cell's config must load
        spec = load_spec(path)
        assert plan(spec.configs, spec.backbones, spec.seeds, list(spec.set), tmp_path) and "compare" in first
        return
    assert load_config(path).name


def test_overrides_and_types():
    cfg = load_config(None, ["train.epochs=2.5", "ascii.width=20", "model.lora.r=8", "eval.splits=[valid]"])
    assert cfg.train.epochs == 2.5 and cfg.ascii.width == 20 and cfg.model.lora.r == 8
    assert cfg.eval.splits == ("valid",)
    assert to_dict(cfg)["eval"]["splits"] == ["valid"]


@pytest.mark.parametrize("override,msg", [
    ("train.epoch=2", "unknown config key 'train.epoch'; known keys in train: .*epochs"),
    ("bogus=1", "unknown config key 'bogus'"),
    ("train.batch_size=big", "config train.batch_size: expected an integer"),
    ("model.backbone=gpt2", "unknown backbone 'gpt2'"),
    ("data.dataset=cifar", "unknown dataset 'cifar'"),
    ("model.lora.enabled=true", "tiny presets train all their weights"),
    ("prompt.template=nope", "unknown prompt template"),
    ("ascii.ramp=abc", "must start with a space"),
    ("model.num_heads=3", "divisible"),
    ("eval.tta=rotate", "unknown test-time augmentation 'rotate'; known: none, shift4"),
])
def test_bad_configs(override, msg):
    with pytest.raises(UserError, match=msg):
        load_config(None, [override])


def test_api_runs_refuse_test_time_views():
    with pytest.raises(UserError, match="mistral-api backend needs eval.tta: none"):
        load_config(None, ["backend=mistral-api", "eval.tta=shift4"])
    assert load_config(None, ["backend=mistral-api"]).eval.tta == "none"


def test_bad_yaml_names_the_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: x\ntrain:\n  epochs: [1\n")
    with pytest.raises(UserError, match="c.yaml: line"):
        load_config(p)


def test_stage_lists_take_index_overrides_and_refuse_bad_ones():
    two = "stages=[{name: align, trainable: {projector: 0.001}}, {name: instruct, trainable: {llm: 0.0001}}]"
    cfg = load_config(None, ["route=llava", two, "stages.1.epochs=3", "stages.1.trainable.projector=2e-5"])
    assert cfg.stages[1].epochs == 3.0 and cfg.stages[1].trainable == {"llm": 0.0001, "projector": 2e-5}
    assert cfg.stages[0].epochs == cfg.train.epochs                       # filled in from train.epochs
    with pytest.raises(UserError, match="'5' is not an index of a list of 2"):
        load_config(None, ["route=llava", two, "stages.5.epochs=3"])
    with pytest.raises(UserError, match="stage names must be unique"):
        load_config(None, ["route=llava", "stages=[{name: a}, {name: a}]"])
    with pytest.raises(UserError, match="llm-lora needs model.lora.enabled"):
        load_config(None, ["route=llava", "stages=[{name: a, trainable: {llm-lora: 0.001}}]"])


def test_route_defaults_keep_every_ascii_config_and_give_llava_its_recipe():
    from mistral_vision.config import resolve_stages

    ascii_cfg = load_config(None, ["train.lr=0.003", "train.epochs=2"])
    assert ascii_cfg.route == "ascii"
    (only,) = resolve_stages(ascii_cfg)
    assert only.trainable == {"llm": 0.003} and only.epochs == 2
    align, instruct = resolve_stages(load_config(None, ["route=llava"]))
    assert align.trainable == {"projector": 1e-3} and instruct.trainable == {"projector": 2e-5, "llm": 2e-5}
