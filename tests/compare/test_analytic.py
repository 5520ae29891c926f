"""Analytic backbone costs: published numbers, hand computations, HF parity, and every bad-input error."""
import json

import pytest
import transformers

from mistral_vision.compare import analytic as an
from mistral_vision.errors import UserError
from mistral_vision.models.backbones import BACKBONES

GiB, MiB, KiB = 2**30, 2**20, 2**10
# A tiny Mistral config; its costs are worked out by hand in test_hf_folder_matches_hand_computation.
TINY = dict(model_type="mistral", hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, vocab_size=100, sliding_window=8, max_position_embeddings=64,
            tie_word_embeddings=False)


def _row(bid):
    return an.analytic_table([bid])[0]


def _folder(tmp_path, cfg):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def _context(row, n):
    return next(c for c in row.contexts if c.context == n)


# K and V (2) x 32 layers x KV heads x head_dim 128 x 2 bytes (fp16), for one token:
#   Mistral-7B, 8 KV heads (GQA):     2 * 32 *  8 * 128 * 2 = 131,072 B = 128 KiB
#   Llama-2-7B, 32 KV heads (= heads): 2 * 32 * 32 * 128 * 2 = 524,288 B = 512 KiB
@pytest.mark.parametrize("bid,kv_heads,kv", [("mistral-7b", 8, 128 * KiB), ("mistral-7b-instruct", 8, 128 * KiB),
                                             ("llama-2-7b", 32, 512 * KiB), ("vicuna-7b", 32, 512 * KiB)])
def test_kv_cache_bytes_per_token(bid, kv_heads, kv):
    assert 2 * 32 * kv_heads * 128 * 2 == kv
    row = _row(bid)
    assert (row.arch.layers, row.arch.kv_heads, row.arch.head_dim) == (32, kv_heads, 128)
    assert row.kv_bytes_per_token == kv
    assert _context(row, 4096).kv_bytes == 4096 * kv                # and over 4,096 tokens: 512 MiB / 2 GiB
    assert _context(row, 4096).kv_bytes == {8: 512 * MiB, 32: 2 * GiB}[kv_heads]


@pytest.mark.parametrize("bid,params", [("mistral-7b", 7_241_732_096), ("mistral-7b-instruct", 7_241_732_096),
                                        ("llama-2-7b", 6_738_415_616), ("vicuna-7b", 6_738_415_616)])
def test_parameter_counts_of_the_published_checkpoints(bid, params):
    row = _row(bid)
    assert row.params == params
    assert row.non_embedding_params == params - 2 * 32000 * 4096       # untied: embeddings + lm_head
    assert row.dense_flops_per_token == 2 * row.non_embedding_params


def test_sliding_window_caps_mistral_v01_cache_at_4096_tokens():
    c = _context(_row("mistral-7b"), 32768)
    assert (c.kv_bytes, c.kv_bytes_windowed) == (4 * GiB, 512 * MiB)
    assert c.kv_bytes_windowed == an.kv_bytes(an.PUBLISHED["mistral-7b"][1], 4096)
    no_window = _context(_row("mistral-7b-instruct"), 32768)         # v0.2: sliding_window null
    assert no_window.kv_bytes == no_window.kv_bytes_windowed == 4 * GiB


def test_windowed_attention_is_8x_cheaper_at_32k_and_equal_at_4k():
    row = _row("mistral-7b")
    long, short = _context(row, 32768), _context(row, 4096)
    assert long.attn_flops == 8 * long.attn_flops_windowed == 4 * 32 * 32 * 128 * 32768
    assert short.attn_flops == short.attn_flops_windowed
    llama = _context(_row("llama-2-7b"), 32768)
    assert llama.attn_flops == llama.attn_flops_windowed == long.attn_flops   # GQA does not cut score FLOPs
    assert llama.beyond_max_context and not long.beyond_max_context


def test_prefill_attention_closed_form_matches_the_sum_over_positions():
    arch = an.arch_from_config(TINY, "tiny")                            # window 8
    for tokens in (1, 5, 8, 9, 30):
        for windowed in (True, False):
            brute = sum(an.attention_flops(arch, t, windowed) for t in range(1, tokens + 1))
            assert an.prefill_attention_flops(arch, tokens, windowed) == brute


def test_image_tokens_cost_kv_and_prefill():
    row = _row("llama-2-7b")
    img = {i.tokens: i for i in row.images}
    assert img[576].kv_bytes == 576 * 512 * KiB
    assert img[2880].kv_bytes == 5 * img[576].kv_bytes
    assert img[576].prefill_dense_flops == 576 * row.dense_flops_per_token
    assert img[576].prefill_attn_flops == 4 * 32 * 32 * 128 * (576 * 577 // 2)
    assert img[576].prefill_flops == img[576].prefill_dense_flops + img[576].prefill_attn_flops


def test_hf_folder_matches_hand_computation(tmp_path):
    row = _row(f"hf:{_folder(tmp_path, TINY)}")
    # embed 100*64 + 2 blocks * (attn 64*16*(2*4+2*2) + mlp 3*64*128 + norms 2*64) + final norm 64 + lm_head 100*64
    assert row.params == 6400 + 2 * (12288 + 24576 + 128) + 64 + 6400 == 86848
    assert row.kv_bytes_per_token == 2 * 2 * 2 * 16 * 2 == 256
    c = _context(row, 4096)
    assert (c.kv_bytes, c.kv_bytes_windowed) == (256 * 4096, 256 * 8)
    assert (c.attn_flops, c.attn_flops_windowed) == (4 * 2 * 4 * 16 * 4096, 4 * 2 * 4 * 16 * 8)
    assert c.beyond_max_context and row.source.endswith("config.json")


@pytest.mark.parametrize("family,tie", [("mistral", False), ("llama", True)])
def test_parameter_count_matches_transformers(tmp_path, family, tie):
    cfg = dict(TINY, model_type=family, tie_word_embeddings=tie)
    config_cls, model_cls = {"mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
                             "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM)}[family]
    model = model_cls(config_cls(**{k: v for k, v in cfg.items() if k != "model_type"}))
    row = _row(f"hf:{_folder(tmp_path, cfg)}")
    assert row.params == sum(p.numel() for p in model.parameters())      # shared (tied) weights counted once
    assert row.non_embedding_params == sum(p.numel() for n, p in model.named_parameters()
                                           if "embed_tokens" not in n and "lm_head" not in n)


def test_llava_style_config_uses_its_text_config(tmp_path):
    row = _row(f"hf:{_folder(tmp_path, {'model_type': 'llava', 'text_config': TINY})}")
    assert row.params == 86848


def test_hub_id_goes_through_autoconfig(monkeypatch):
    tiny = transformers.MistralConfig(**{k: v for k, v in TINY.items() if k != "model_type"})
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", lambda hub_id: tiny)
    row = _row("hf:someone/tiny-mistral")
    assert (row.source, row.params, row.arch.sliding_window) == ("someone/tiny-mistral", 86848, 8)


def test_hub_errors_become_one_line_user_errors(monkeypatch):
    def fail(hub_id):
        raise OSError("someone/missing is not a local folder and is not a valid model identifier\nmore detail")
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", fail)
    with pytest.raises(UserError, match="cannot read the config of 'someone/missing': someone/missing is not") as e:
        an.analytic_table(["hf:someone/missing"])
    assert "\n" not in str(e.value)


def test_unknown_id_lists_known_ids():
    with pytest.raises(UserError, match=r"unknown backbone 'gpt2'; known: hf:<path or hub id>, llama-2-7b, "
                                        r"mistral-7b, mistral-7b-instruct, vicuna-7b$"):
        an.analytic_table(["mistral-7b", "gpt2"])


def test_tiny_presets_explain_why_they_are_not_comparable():
    with pytest.raises(UserError, match="'mistral-tiny' is a random-init preset.*hf:<model folder>.*mistral-7b"):
        an.analytic_table(["mistral-tiny"])


def _no_config(p):
    (p / "empty").mkdir()
    return p / "empty"


def _bad_json(p):
    (p / "bad").mkdir()
    (p / "bad" / "config.json").write_text('{"hidden_size": 4,\n}')
    return p / "bad"


@pytest.mark.parametrize("setup,message", [
    (_no_config, "empty: no config.json here"),
    (lambda p: p / "nowhere", "nowhere: not a model folder"),
    (_bad_json, "config.json:2: not valid JSON"),
    (lambda p: _folder(p, {k: v for k, v in TINY.items() if k != "vocab_size"}), "not a positive integer: vocab_size"),
    (lambda p: _folder(p, dict(TINY, num_key_value_heads=3)), "not a multiple of num_key_value_heads 3"),
])
def test_bad_hf_folders_give_one_clear_error(tmp_path, setup, message):
    with pytest.raises(UserError, match=message) as e:
        an.analytic_table([f"hf:{setup(tmp_path)}"])
    assert "\n" not in str(e.value)


def test_empty_inputs_are_user_errors():
    with pytest.raises(UserError, match="'hf:' needs a model folder or hub id"):
        an.analytic_table(["hf:"])
    with pytest.raises(UserError, match="at least one backbone id"):
        an.analytic_table([])


def test_published_table_covers_every_pretrained_backbone_of_the_registry():
    pretrained = {b.id: b.checkpoint for b in BACKBONES.values() if not b.is_tiny}
    assert {bid: src for bid, (src, _) in an.PUBLISHED.items()} == pretrained


def test_markdown_has_one_row_per_model_in_each_table_and_json_round_trips():
    ids = ["mistral-7b", "mistral-7b-instruct", "llama-2-7b", "vicuna-7b"]
    rows = an.analytic_table(ids)
    md = an.format_markdown(rows)
    for bid in ids:
        assert sum(line.startswith(f"| {bid} |") for line in md.splitlines()) == 2
    mistral = next(line for line in md.splitlines() if line.startswith("| mistral-7b |"))
    assert "| 7,241,732,096 |" in mistral and "| 128 KiB |" in mistral and "4 GiB (512 MiB windowed)" in mistral
    assert "16 GiB †" in md and "† beyond" in md
    data = json.loads(json.dumps(an.to_json(rows)))
    assert [d["id"] for d in data] == ids and data[0]["contexts"][1]["kv_bytes_windowed"] == 512 * MiB


@pytest.mark.parametrize("n,text", [(131072, "128 KiB"), (4 * GiB, "4 GiB"), (1.5 * MiB, "1.5 MiB"), (512, "512 B")])
def test_human_bytes(n, text):
    assert an.human_bytes(n) == text


def test_human_flops():
    assert an.human_flops(2 * 32 * 32 * 128 * 4096 * 2) == "2.147 GFLOPs"
    assert an.human_flops(8.1276e12) == "8.128 TFLOPs"


def test_cli_writes_the_table_and_refuses_unknown_ids(tmp_path, capsys):
    from mistral_vision.cli import main

    assert main(["compare", "--analytic", "mistral-7b", "llama-2-7b", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "analytic.md").is_file() and (tmp_path / "analytic.json").is_file()
    assert "128 KiB" in (tmp_path / "analytic.md").read_text()
    capsys.readouterr()
    assert main(["compare", "--analytic", "gpt2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gpt2" in err
