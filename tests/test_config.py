from pathlib import Path

import pytest

from mistral_vision.config import load_config, to_dict
from mistral_vision.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


ALL_PARTS, TOWER = {"projector", "vision", "llm"}, {"projector", "vision"}
LLAVA_15 = {"align": {"projector": 1e-3}, "instruct": {"projector": 2e-5, "llm-lora": 2e-4}}
# What each shipped config is, as its header comment says: (run name, route, dataset, LLM, vision tower,
# tokenizer, ASCII art size, {stage: parts it trains}); a dict of parts pins their learning rates too.
SHIPPED = {
    "demo.yaml": ("demo-mnist", "ascii", "mnist", "mistral-tiny", None, "default", "10x10", {"train": {"llm"}}),
    "demo-llava.yaml": ("demo-llava", "llava", "mnist", "mistral-tiny", "clip-tiny", "default", None,
                        {"align": TOWER, "instruct": ALL_PARTS}),
    "mnist-ascii-cpu.yaml": ("mnist-ascii-cpu", "ascii", "mnist", "mistral-tiny", None, "default", "10x10",
                             {"train": {"llm"}}),
    "mnist-ascii-bpe-cpu.yaml": ("mnist-ascii-bpe-cpu", "ascii", "mnist", "mistral-tiny", None, "ascii-bpe", "10x10",
                                 {"train": {"llm"}}),
    "fashion-ascii-cpu.yaml": ("fashion-ascii-cpu", "ascii", "fashion-mnist", "mistral-tiny", None, "default",
                               "14x14", {"train": {"llm"}}),
    "fashion-ascii-bpe-cpu.yaml": ("fashion-ascii-bpe-cpu", "ascii", "fashion-mnist", "mistral-tiny", None,
                                   "ascii-bpe", "14x14", {"train": {"llm"}}),
    # the tiny tower trains from scratch: tower + projector with the LLM frozen, then everything
    "mnist-llava-cpu.yaml": ("mnist-llava-cpu", "llava", "mnist", "mistral-tiny", "clip-tiny", "default", None,
                             {"align": TOWER, "instruct": ALL_PARTS}),
    "fashion-llava-cpu.yaml": ("fashion-llava-cpu", "llava", "fashion-mnist", "mistral-tiny", "clip-tiny", "default",
                               None, {"align": TOWER, "instruct": ALL_PARTS}),
    # question sets: the random-init LLM trains from the first stage (captions), then on everything
    "mnist-vqa-ascii-cpu.yaml": ("mnist-vqa-ascii-cpu", "ascii", "mnist-vqa", "mistral-tiny", None, "ascii-bpe",
                                 "20x20", {"captions": {"llm"}, "instruct": {"llm"}}),
    "mnist-vqa-llava-cpu.yaml": ("mnist-vqa-llava-cpu", "llava", "mnist-vqa", "mistral-tiny", "clip-tiny",
                                 "ascii-bpe", None, {"captions": ALL_PARTS, "instruct": ALL_PARTS}),
    "fashion-vqa-llava-cpu.yaml": ("fashion-vqa-llava-cpu", "llava", "fashion-vqa", "mistral-tiny", "clip-tiny",
                                   "ascii-bpe", None, {"captions": ALL_PARTS, "instruct": ALL_PARTS}),
    # LLaVA-1.5's recipe on the lab's pretrained tiny LLM: align with the LLM frozen, then everything
    "mnist-vqa-llava-pretrained-cpu.yaml": ("mnist-vqa-llava-pretrained-cpu", "llava", "mnist-vqa",
                                            "hf:runs/pretrain-mistral-tiny/model", "clip-tiny", "default", None,
                                            {"align": TOWER, "instruct": ALL_PARTS}),
    # language pretraining: the LLM alone on generated text, matched in parameters across the two families
    "pretrain/mistral-tiny.yaml": ("pretrain-mistral-tiny", "ascii", "text-skills", "mistral-tiny", None, "ascii-bpe",
                                   "14x14", {"text": {"llm": 5e-4}}),
    "pretrain/llama-tiny.yaml": ("pretrain-llama-tiny", "ascii", "text-skills", "llama-tiny", None, "ascii-bpe",
                                 "14x14", {"text": {"llm": 5e-4}}),
    # 7B recipes: LoRA on the LLM; LLaVA-1.5's projector-only align stage, then projector + LoRA
    "gpu/ascii-mistral-7b-lora.yaml": ("ascii-mistral-7b-lora", "ascii", "mnist", "mistral-7b", None, "default",
                                       "28x28", {"train": {"llm-lora": 2e-4}}),
    "gpu/ascii-llama-2-7b-lora.yaml": ("ascii-llama-2-7b-lora", "ascii", "mnist", "llama-2-7b", None, "default",
                                       "28x28", {"train": {"llm-lora": 2e-4}}),
    "gpu/llava-clip336-mistral-7b-instruct.yaml": ("llava-clip336-mistral-7b-instruct", "llava", "mnist",
                                                   "mistral-7b-instruct", "clip-vit-l-14-336", "default", None,
                                                   LLAVA_15),
    "gpu/llava-clip336-vicuna-7b.yaml": ("llava-clip336-vicuna-7b", "llava", "mnist", "vicuna-7b",
                                         "clip-vit-l-14-336", "default", None, LLAVA_15),
    "gpu/llava-sqa-mistral-7b-instruct.yaml": ("llava-sqa-mistral-7b-instruct", "llava", "llava-json",
                                               "mistral-7b-instruct", "clip-vit-l-14-336", "default", None, LLAVA_15),
    # the seed study done properly: ScienceQA pruned to 1,000 by data.select, then the same two stages
    "gpu/llava-sqa-prune-mistral-7b-instruct.yaml": ("llava-sqa-prune-mistral-7b-instruct", "llava", "llava-json",
                                                     "mistral-7b-instruct", "clip-vit-l-14-336", "default", None,
                                                     LLAVA_15),
    "gpu/llava-sqa-prune-vicuna-7b.yaml": ("llava-sqa-prune-vicuna-7b", "llava", "llava-json", "vicuna-7b",
                                           "clip-vit-l-14-336", "default", None, LLAVA_15),
    # the hosted route: Mistral's fine-tuning API trains open-mistral-7b; no local tokenizer or stages
    "api/mnist-mistral-api.yaml": ("mnist-mistral-api", "ascii", "mnist", "open-mistral-7b", None, None, "14x14",
                                   None),
}


def _facts(cfg):
    """The SHIPPED row of a loaded config."""
    from mistral_vision.config import resolve_stages

    api = cfg.backend == "mistral-api"
    stages = None if api else {st.name: dict(st.trainable) for st in resolve_stages(cfg)}
    return (cfg.name, cfg.route, cfg.data.format if cfg.data.format != "idx" else cfg.data.dataset,
            cfg.api.model if api else cfg.model.backbone, cfg.vision.tower if cfg.route == "llava" else None,
            None if api else cfg.tokenizer.kind,
            f"{cfg.ascii.width}x{cfg.ascii.height}" if cfg.route == "ascii" else None, stages)


def test_every_shipped_run_config_is_described_here():
    from mistral_vision.compare.runner import is_spec

    runs = {p.relative_to(ROOT / "configs").as_posix() for p in CONFIGS if not is_spec(p)}
    assert runs == set(SHIPPED)


@pytest.mark.parametrize("rel", sorted(SHIPPED))
def test_shipped_configs_are_what_their_headers_say(rel):
    cfg = load_config(ROOT / "configs" / rel)
    *facts, stages = _facts(cfg)
    *want, want_stages = SHIPPED[rel]
    assert facts == want
    if want_stages is not None:
        assert {n: set(t) for n, t in stages.items()} == {n: set(t) for n, t in want_stages.items()}
        for name, parts in want_stages.items():
            if isinstance(parts, dict):
                assert stages[name] == pytest.approx(parts)
    gpu = rel.startswith("gpu/")               # 7B recipes: bf16 weights and LoRA; the CPU ones fp32, all weights
    assert (cfg.model.dtype, cfg.model.lora.enabled) == (("bfloat16", True) if gpu else ("float32", False))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_loads_and_says_how_to_run_it(path, tmp_path):
    from mistral_vision.compare.runner import is_spec, load_spec, plan

    first = path.read_text().splitlines()[0]
    assert first.startswith("# Run: ") and ("mistral-vision " in first or "mistral_vision.cli " in first)
    assert f" {path.relative_to(ROOT).as_posix()} " in first + " "          # the command runs this very file
    if is_spec(path):                       # a compare study: every cell's config must load
        from mistral_vision.compare.selection_study import study_arms

        spec = load_spec(path)
        arms = study_arms(spec.selection) if spec.selection else None
        assert plan(spec.configs, spec.backbones, spec.seeds, list(spec.set), tmp_path, arms=arms)
        assert "compare" in first
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
