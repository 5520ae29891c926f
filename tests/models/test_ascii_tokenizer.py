"""The ASCII BPE tokenizer: lossless, compressing, chunk-aligned, loadable, and extending checkpoints."""
import json

import pytest
import torch

from mistral_vision.ascii.render import render_ascii
from mistral_vision.config import LoraConfig, ModelConfig, load_config
from mistral_vision.errors import UserError
from mistral_vision.models import ascii_tokenizer as at
from mistral_vision.models.backbones import build_model, get_backbone, load_tokenizer, load_trained, save_model
from tests.conftest import synthetic_images

ODD = "h\u00e9llo \u2593\u2592\u2591 \t\x00 <0x41> \U0001f600 ~`|\n"   # non-ASCII, controls, a literal byte-token name


@pytest.fixture(scope="module")
def arts():
    images, _ = synthetic_images(400, 3)
    return render_ascii(images, 14, 14)


def test_round_trip_is_exact_for_art_and_for_characters_outside_the_alphabet(arts):
    tok = at.train_ascii_tokenizer(arts[:300], vocab_size=600)
    assert len(tok) == 600
    at.check_round_trip(tok, arts + [ODD, ODD + arts[0], ""])
    ids = tok(ODD, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids                            # byte fallback, never <unk>
    assert "<0xC3>" in tok.convert_ids_to_tokens(ids)             # the UTF-8 bytes of "\u00e9"


def test_bpe_compresses_and_bigger_vocab_compresses_more(arts):
    counts = {v: at.token_stats(at._hf_counter(at.train_ascii_tokenizer(arts[:300], v))(arts[300:]),
                                [len(a) for a in arts[300:]])["tokens_mean"] for v in (400, 1200)}
    assert counts[1200] < counts[400] < len(arts[0]) / 3


def test_chunks_keep_every_token_inside_one_row_chunk(arts):
    tok = at.train_ascii_tokenizer(arts[:300], vocab_size=700, split="chunks", chunk_size=2)
    for art in arts[300:320]:
        pieces = [tok.decode([i]) for i in tok(art, add_special_tokens=False)["input_ids"]]
        assert "".join(pieces) == art
        assert all(len(p.rstrip("\n")) <= 2 and "\n" not in p.rstrip("\n") for p in pieces)
        # one token per chunk (a chunk unseen in training may take two), so token i is the same region
        assert 14 * 7 <= len(pieces) <= 14 * 7 + 2


def test_rows_split_never_crosses_a_line(arts):
    tok = at.train_ascii_tokenizer(arts[:300], vocab_size=900, split="rows")
    pieces = [tok.decode([i]) for i in tok(arts[300], add_special_tokens=False)["input_ids"]]
    assert all("\n" not in p[:-1] for p in pieces)


def test_saved_tokenizer_reloads_with_transformers(arts, tmp_path):
    from transformers import AutoTokenizer

    tok = at.train_ascii_tokenizer(arts[:300], vocab_size=500)
    at.save_ascii_tokenizer(tok, tmp_path / "tk", {"vocab_size": 500})
    again = AutoTokenizer.from_pretrained(tmp_path / "tk")
    assert again(arts[5])["input_ids"] == tok(arts[5])["input_ids"]
    assert json.loads((tmp_path / "tk" / at.MARKER_FILE).read_text())["vocab_size"] == 500
    msgs = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "7"}]
    assert again.apply_chat_template(msgs, tokenize=False) == "<s>x<sep>7</s>"


@pytest.mark.parametrize("kw,msg", [(dict(vocab_size=100), "too small"), (dict(split="cols"), "unknown tokenizer split"),
                                    (dict(split="chunks", chunk_size=0), "chunk_size")])
def test_bad_settings_are_refused(arts, kw, msg):
    with pytest.raises(UserError, match=msg):
        at.train_ascii_tokenizer(arts[:10], **{"vocab_size": 500, **kw})


def test_unknown_tokenizer_name_lists_the_known_ones():
    with pytest.raises(UserError, match="mistral-v1, mistral-tekken"):
        at.reference_counter("gpt2")


def test_mistral_reference_tokenizers_count_offline(arts):
    v1, tekken = at.reference_counter("mistral-v1"), at.reference_counter("mistral-tekken")
    n1, nt = v1(arts[:5]), tekken(arts[:5])
    assert all(0 < n < len(a) for n, a in zip(n1 + nt, arts[:5] * 2))   # they merge space runs, not all


@pytest.fixture(scope="module")
def mistral_v1_hf(tmp_path_factory):
    """Mistral's v1 SentencePiece vocabulary (shipped in mistral-common) as a transformers tokenizer."""
    import shutil
    from pathlib import Path

    import mistral_common
    from transformers import LlamaTokenizer

    folder = tmp_path_factory.mktemp("v1")
    shutil.copy(Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1", folder / "tokenizer.model")
    return lambda: LlamaTokenizer.from_pretrained(folder, legacy=True)


def test_extending_mistral_v1_is_lossless_and_shorter(arts, mistral_v1_hf):
    from mistral_vision.models.backbones import FAMILIES

    ascii_tok = at.train_ascii_tokenizer(arts[:300], vocab_size=800)
    base = FAMILIES["mistral"].fix_tokenizer(mistral_v1_hf())
    texts = ["[INST] " + a + " [/INST]" for a in arts[300:340]] + ["[INST] " + ODD + " [/INST]"]
    before = sum(len(x) for x in base(texts, add_special_tokens=False)["input_ids"])
    added = at.extend_tokenizer(base, ascii_tok)
    assert len(added) > 100 and len(base) == 32000 + len(added)
    after = sum(len(x) for x in base(texts, add_special_tokens=False)["input_ids"])
    assert after < 0.6 * before
    at.check_round_trip(base, texts)       # "%+" must not become "% +" (SentencePiece's dummy prefix)


def test_class_name_tokens_keep_mistral_v1_lossless(mistral_v1_hf):
    from mistral_vision.data.datasets import get_dataset
    from mistral_vision.models.backbones import FAMILIES

    base = FAMILIES["mistral"].fix_tokenizer(mistral_v1_hf())
    names = get_dataset("fashion-mnist").label_names
    assert at.add_label_tokens(base, names) == [n for n in names if n not in mistral_v1_hf().get_vocab()]
    texts = ["[INST] Which is it: " + ", ".join(names) + "? [/INST] Ankle boot", "[INST] %+ Coat, or not [/INST]"]
    at.check_round_trip(base, texts)       # text after a name must not gain SentencePiece's dummy-prefix space
    ids = base("[INST] x [/INST] Shirt", add_special_tokens=False)["input_ids"]
    assert base.convert_tokens_to_ids("Shirt") in ids


def test_checkpoint_run_extends_tokenizer_and_inits_rows_from_pieces(data_dir, tmp_path):
    # a tiny local checkpoint with a char-level tokenizer stands in for Mistral-7B
    spec_t = get_backbone("mistral-tiny")
    base_tok = load_tokenizer(spec_t)
    base_tok.chat_template = None
    small = dict(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64)
    build_model(spec_t, ModelConfig(**small), base_tok).save_pretrained(tmp_path / "ckpt")
    base_tok.save_pretrained(tmp_path / "ckpt")

    cfg = load_config(None, [f"model.backbone=hf:{tmp_path / 'ckpt'}", f"data.data_dir={data_dir}",
                             "data.offline=true", "data.valid_size=100", "tokenizer=ascii-bpe",
                             "tokenizer.vocab_size=450", "model.lora.enabled=true", "name=ext"])
    spec = get_backbone(cfg.model.backbone)
    tok = at.run_tokenizer(cfg, spec, cfg.run_dir, log=lambda *_: None)
    assert (cfg.run_dir / "tokenizer" / "tokenizer.json").is_file()
    n_base = len(base_tok)
    assert len(tok) > n_base
    mcfg = ModelConfig(backbone=spec.id, **small, lora=LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0,
                                                                   target_modules=("q_proj", "v_proj")))
    model = build_model(spec, mcfg, tok)
    piece = tok.convert_ids_to_tokens(n_base)
    sub = base_tok(piece, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        new_row = model(input_ids=torch.tensor([[n_base]]), output_hidden_states=True).hidden_states[0][0, 0]
        mean = model(input_ids=torch.tensor([sub]), output_hidden_states=True).hidden_states[0][0].mean(0)
    assert len(sub) > 1 and torch.allclose(new_row, mean, atol=1e-6)
    # the new rows are trainable (PEFT trainable tokens); change them and a reload keeps them
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("trainable_tokens" in n for n in trainable) and any("lora_" in n for n in trainable)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "trainable_tokens" in n or "lora_B" in n:
                p.add_(0.05)
    model.eval()
    save_model(model, tok, tmp_path / "model", spec)
    again, tok2, _ = load_trained(tmp_path / "model")
    x = torch.tensor([tok2("@@  ..##\n  %%")["input_ids"]])
    assert x.max() >= n_base
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, again(input_ids=x).logits, atol=1e-5)


def test_cli_train_and_stats(data_dir, tmp_path, capsys):
    from mistral_vision.cli import main
    from mistral_vision.config import TokenizerConfig

    out = tmp_path / "tok"
    # no --vocab-size: the config's default size
    assert main(["tokenizer", "train", "--dataset", "mnist", "--data-dir", str(data_dir), "--ascii-size", "28",
                 "--train-images", "400", "--valid-size", "100", "--out", str(out)]) == 0
    assert "(lossless)" in capsys.readouterr().out
    assert json.loads((out / at.MARKER_FILE).read_text())["vocab_size"] == TokenizerConfig().vocab_size == 1024
    code = main(["tokenizer", "stats", "--dataset", "mnist", "--data-dir", str(data_dir), "--ascii-size", "28",
                 "--split", "valid", "--valid-size", "100", "--tokenizer", "char", "--tokenizer", "mistral-v1", "--tokenizer", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    rows = {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines()[2:]}
    assert rows["char"] == 811 and rows[str(out)] < rows["mistral-v1"] / 4 < rows["char"]


def test_tiny_run_trains_with_the_ascii_tokenizer_and_predict_reloads_it(data_dir, tmp_path):
    from mistral_vision.predict import predict
    from mistral_vision.io import read_jsonl_tolerant
    from mistral_vision.train.loop import train
    from tests.conftest import tiny_overrides

    cfg = load_config(None, tiny_overrides(data_dir, name="bpe", **{"tokenizer": "ascii-bpe",
                                                                   "tokenizer.split": "chunks",
                                                                   "tokenizer.vocab_size": 500,  # at most
                                                                   "train.epochs": 4}))
    train(cfg, progress=False)
    run = cfg.run_dir
    kept = at.load_ascii_tokenizer(run / "tokenizer")
    assert 357 < len(kept) <= 500 and json.loads((run / "tokenizer" / at.MARKER_FILE).read_text())["split"] == "chunks"
    r = predict(run, "mnist", "valid", data_dir=str(data_dir), progress=False)
    recs = read_jsonl_tolerant(r.path)
    assert sum(x["pred"] == x["label"] for x in recs) / len(recs) > 0.5     # chance is 0.1


def test_label_tokens_make_each_answer_one_token_and_scoring_one_pass(data_dir, tmp_path):
    from mistral_vision.predict import predict
    from mistral_vision.infer.scorer import LabelScorer
    from mistral_vision.io import read_jsonl_tolerant
    from mistral_vision.tasks.ascii import AsciiTask
    from mistral_vision.train.loop import train
    from tests.conftest import tiny_overrides

    cfg = load_config(None, tiny_overrides(data_dir, name="lab", **{"data.dataset": "fashion-mnist",
                                                                   "tokenizer": "ascii-bpe", "tokenizer.split": "chunks",
                                                                   "tokenizer.vocab_size": 500,
                                                                   "tokenizer.label_tokens": "true"}))
    train(cfg, progress=False)
    _, tok, _ = load_trained(cfg.run_dir / "model")
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    task = AsciiTask.from_config(cfg, tok, names)
    assert all(len(ids) == 2 and ids[-1] == tok.eos_token_id for ids in task.label_ids)   # name + EOS
    assert [tok.decode(ids[:1]) for ids in task.label_ids] == list(names)
    scorer = LabelScorer(None, task.label_ids, tok.pad_token_id, tok.eos_token_id)
    assert scorer.rest_in.shape[1] == 0                       # decided by the first token: one pass
    at.check_round_trip(tok, ["Shirt\n" + "@@ ..\n", "a Coat, Dress or Bag"])
    r = predict(cfg.run_dir, "fashion-mnist", "valid", data_dir=str(data_dir), progress=False)
    recs = {x["index"]: x for x in read_jsonl_tolerant(r.path)}
    assert sorted(recs) == sorted(r.data.indices.tolist())
    for x in recs.values():                 # each record is internally consistent ...
        assert abs(sum(x["probs"]) - 1) < 1e-4
        assert x["pred"] == x["probs"].index(max(x["probs"])) and x["pred_name"] == names[x["pred"]]
        assert x["prob"] == x["probs"][x["pred"]]
    # ... and its probabilities are this model's label scores, computed here by hand
    model, _, _ = load_trained(cfg.run_dir / "model")
    first = r.data.indices[:24].tolist()
    by_hand = torch.softmax(LabelScorer(model, task.label_ids, tok.pad_token_id, tok.eos_token_id)
                            .score(task.encode(r.data.images[:24]).ids), -1)
    assert torch.allclose(torch.tensor([recs[i]["probs"] for i in first]), by_hand, atol=1e-5)
