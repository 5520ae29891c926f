"""A pretrained tiny LLM: `pretrain` trains a text-only run once, its model/ is an ordinary causal-LM checkpoint with
its tokenizer, `hf:` loads it unchanged on both routes, a VQA config builds it first when absent, and every
misuse is one line, exit code 2, nothing written."""
import json
import shutil

import pytest
import torch

from mistral_vision.cli import main
from mistral_vision.config import load_config
from mistral_vision.models.build import build_run_model
from tests.conftest import tiny_overrides, write_dataset
from tests.test_vqa_cli import VQA

SHAPE = "{hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2, intermediate_size: 64, sliding_window: 512}"


def text_yaml(root, name: str, samples: int = 48, splits: str = "[valid, test]", backbone: str = "mistral-tiny") -> str:
    return (f"name: {name}\nruns_dir: {root / 'runs'}\n"
            f"data: {{dataset: text-skills, text_samples: {samples}, text_turns: 2, text_valid: 9, text_test: 6}}\n"
            "tokenizer: {kind: ascii-bpe, split: words, vocab_size: 400}\n"
            f"model: {{backbone: {backbone}, {SHAPE[1:]}\n"
            "train: {epochs: 1, batch_size: 16, lr: 0.005, warmup_steps: 2, log_every: 2, eval_every: 0, "
            "loss_reduction: token}\n"
            "stages: [{name: text, kind: text}]\n"
            f"eval: {{splits: {splits}, batch_size: 16}}\n")


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    (root / "pre.yaml").write_text(text_yaml(root, "pre"))
    assert main(["pretrain", str(root / "pre.yaml")]) == 0
    write_dataset(root / "data", "mnist")
    return root, root / "runs" / "pre"


def vqa(root, name, route="llava", **extra):
    """A tiny mnist-vqa config whose LLM is the pretrained one (its shape is tiny_overrides' too)."""
    over = {**VQA, "model.backbone": f"hf:{root / 'runs' / 'pre' / 'model'}", "runs_dir": str(root / "runs"),
            "train.eval_every": 0, **extra}
    if route == "ascii":
        over = {k: v for k, v in over.items() if not k.startswith(("vision.", "stages"))}
    return tiny_overrides(root / "data", name=name, route=route, **over)


def test_pretrain_saves_a_causal_lm_with_its_tokenizer_and_per_skill_accuracy(pretrained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mistral_vision.data.textskills import SKILLS

    _, run = pretrained
    model, tok = AutoModelForCausalLM.from_pretrained(run / "model"), AutoTokenizer.from_pretrained(run / "model")
    assert type(model).__name__ == "MistralForCausalLM" and len(tok) == model.config.vocab_size
    assert tok.decode(tok("How many times is owl listed?")["input_ids"]) == "How many times is owl listed?"
    for split, n in (("valid", 9), ("test", 6)):
        m = json.loads((run / "eval" / f"text-skills-{split}" / "metrics.json").read_text())
        assert m["n"] == n and set(m["per_type"]) == set(SKILLS) and m["img"] is None
    report = (run / "report.md").read_text()
    assert "Text **text-skills**" in report and "### text-skills-valid" in report
    assert "| type | " + " | ".join(sorted(SKILLS)) + " |" in report
    summary = json.loads((run / "train_summary.json").read_text())
    assert [(s["name"], s["trainable"]) for s in summary["stages"]] == [("text", {"llm": 0.005})]


def test_pretrain_again_reuses_the_finished_run_untouched(pretrained, monkeypatch, capsys):
    import mistral_vision.pipeline as pipeline

    root, run = pretrained
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    monkeypatch.setattr(pipeline, "run", lambda *a, **k: pytest.fail("a finished pretraining was run again"))
    assert main(["pretrain", str(root / "pre.yaml")]) == 0
    assert "finished earlier, nothing to do" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
    # the same run name with another config is not taken for the cached one
    assert main(["pretrain", str(root / "pre.yaml"), "--set", "train.lr=0.001"]) == 2
    assert "was pretrained with stages.0.trainable.llm=0.005 but the config now says 0.001" in capsys.readouterr().err


@pytest.mark.parametrize("route", ["llava", "ascii"])
def test_hf_backbone_is_the_pretrained_llm_unchanged(pretrained, route, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root, run = pretrained
    ref, ref_tok = AutoModelForCausalLM.from_pretrained(run / "model"), AutoTokenizer.from_pretrained(run / "model")
    cfg = load_config(None, vqa(root, f"load-{route}", route))
    model, proc = build_run_model(cfg, tmp_path, log=lambda *_: None)
    tok = getattr(proc, "tokenizer", proc)
    n = len(ref_tok)
    assert tok.convert_ids_to_tokens(list(range(n))) == ref_tok.convert_ids_to_tokens(list(range(n)))
    lm = (model.model.language_model if route == "llava" else model.model).state_dict()
    for k, v in ref.model.state_dict().items():
        assert torch.equal(lm[k][:n] if k == "embed_tokens.weight" else lm[k], v), k
    assert model.lm_head.weight is (model.model.language_model if route == "llava" else model.model).embed_tokens.weight
    if route == "llava":      # <image> is added as for a real checkpoint: one more token, one more embedding row
        assert len(tok) == n + 1 and tok.convert_ids_to_tokens(n) == "<image>" and lm["embed_tokens.weight"].shape[0] == n + 1
        assert model.config.image_token_id == n
    else:
        assert len(tok) == n and lm["embed_tokens.weight"].shape[0] == n


def test_init_from_a_text_stage_of_another_run_loads_its_llm(pretrained, tmp_path):
    from transformers import AutoModelForCausalLM

    from mistral_vision.errors import UserError
    from mistral_vision.models.build import text_tokenizer
    from mistral_vision.train.checkpoints import load_stage_result

    root, run = pretrained
    stage = run / "stages" / "0-text"
    same = {"model.backbone": "mistral-tiny", "tokenizer.kind": "ascii-bpe", "tokenizer.path": str(run / "model")}
    cfg = load_config(None, vqa(root, "init", **same))
    model, proc = build_run_model(cfg, tmp_path / "a", log=lambda *_: None)
    load_stage_result(model, stage, vocab=text_tokenizer(proc).get_vocab())   # as train() does for init_from
    ref = AutoModelForCausalLM.from_pretrained(run / "model")
    lm = model.model.language_model.state_dict()
    for k, v in ref.model.state_dict().items():
        assert torch.equal(lm[k][:len(v)], v), k
    other = load_config(None, vqa(root, "init2", **{**same, "tokenizer.path": "null", "tokenizer.vocab_size": 420}))
    model, proc = build_run_model(other, tmp_path / "b", log=lambda *_: None)
    with pytest.raises(UserError, match="was trained with another tokenizer"):
        load_stage_result(model, stage, vocab=text_tokenizer(proc).get_vocab())


def _no_tokenizer(root, run):
    folder = root / "no-tokenizer"
    if not folder.exists():
        shutil.copytree(run / "model", folder, ignore=shutil.ignore_patterns("tokenizer*", "chat_template*"))
    return {"model.backbone": f"hf:{folder}"}


def _other_tokenizer(root, run):
    from mistral_vision.models.tokenizer import build_char_tokenizer

    folder = root / "other-tokenizer"
    if not folder.exists():
        shutil.copytree(run / "model", folder)
        build_char_tokenizer().save_pretrained(folder)
    return {"model.backbone": f"hf:{folder}"}


REFUSED = {
    "no-tokenizer": (_no_tokenizer, "no tokenizer in"),
    "other-tokenizer": (_other_tokenizer, "its tokenizer has 101 tokens but its embedding matrix 400 rows"),
    "wider": (lambda root, run: {"model.hidden_size": 64}, "with hidden_size 32, but the config says model.hidden_size: 64"),
    "own-bpe": (lambda root, run: {"tokenizer.kind": "ascii-bpe"}, "use tokenizer.kind: default"),
    "absent": (lambda root, run: {"model.backbone": f"hf:{root / 'runs' / 'nothere' / 'model'}"}, "no such folder"),
    "no-text": (lambda root, run: {"model.backbone": "mistral-tiny", "stages": "[{name: lm, kind: text}]"},
                "a text stage needs text, and data.dataset mnist-vqa has none"),
    "text-projector": (lambda root, run: {"stages": "[{name: lm, kind: text, data: text-skills, "
                                                    "trainable: {projector: 0.01}}]"},
                       "a text stage trains the LLM only (llm or llm-lora), not 'projector'"),
    "other-family": (lambda root, run: {"model.backbone": "llama-tiny", "stages": "[{name: lm, kind: text, "
                                        f"data: text-skills, init_from: {run / 'stages' / '0-text'}}}]"},
                     "is a stage of a mistral run (mistral-tiny), but this run's backbone llama-tiny is llama"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_misuse_is_one_line_exit_2_and_writes_nothing(pretrained, case, capsys):
    from tests.test_llava_cli import sets

    root, run = pretrained
    extra, message = REFUSED[case]
    cfg = root / "c.yaml"
    cfg.write_text("name: x\n")
    assert main(["train", str(cfg)] + sets(vqa(root, f"bad-{case}", **extra(root, run)))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mistral-vision: error: ") and message in err, err
    assert not (root / "runs" / f"bad-{case}").exists()


def test_a_vqa_run_builds_its_absent_pretrained_llm_first_and_says_so(pretrained):
    from mistral_vision.errors import UserError
    from mistral_vision.models.build import is_saved
    from mistral_vision.pipeline import ensure_pretrained

    root, _ = pretrained
    (root / "pre2.yaml").write_text(text_yaml(root, "pre2", samples=32, splits="[valid]"))
    model_dir = root / "runs" / "pre2" / "model"
    cfg = load_config(None, vqa(root, "auto", **{"model.backbone": f"hf:{model_dir}",
                                                 "model.pretrain": str(root / "pre2.yaml")}))
    lines = []
    ensure_pretrained(cfg, progress=False, log=lines.append)
    assert lines[0] == f"pretrained LLM {model_dir} absent: building it with {root / 'pre2.yaml'} first"
    assert is_saved(model_dir) and (root / "runs" / "pre2" / "report.md").is_file()
    again = []
    ensure_pretrained(cfg, progress=False, log=again.append)
    assert again == []
    elsewhere = load_config(None, vqa(root, "auto2", **{"model.pretrain": str(root / "pre2.yaml")}))
    with pytest.raises(UserError, match="make them name the same folder"):
        ensure_pretrained(elsewhere, progress=False, log=lines.append)
