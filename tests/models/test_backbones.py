import pytest
import torch
from transformers import LlamaForCausalLM, MistralForCausalLM

from mistral_vision.config import LoraConfig, ModelConfig
from mistral_vision.errors import UserError
from mistral_vision.models.backbones import (build_model, get_backbone, load_tokenizer, load_trained,
                                             save_model)

SMALL = dict(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64, sliding_window=8)


def test_unknown_backbone_lists_known():
    with pytest.raises(UserError, match="unknown backbone 'gpt2'; known: .*llama-tiny.*mistral-tiny"):
        get_backbone("gpt2")


@pytest.mark.parametrize("bid,cls", [("mistral-tiny", MistralForCausalLM), ("llama-tiny", LlamaForCausalLM)])
def test_tiny_presets_keep_family_architecture(bid, cls):
    spec = get_backbone(bid)
    tok = load_tokenizer(spec)
    model = build_model(spec, ModelConfig(backbone=bid, **SMALL), tok)
    assert type(model) is cls
    assert model.config.num_key_value_heads == 2 < model.config.num_attention_heads    # GQA
    if bid == "mistral-tiny":
        assert model.config.sliding_window == 8
    assert model.config.vocab_size == len(tok)


def _local_checkpoint(tmp_path):
    """A tiny random-init Mistral saved like a hub checkpoint, with its own tokenizer."""
    spec = get_backbone("mistral-tiny")
    tok = load_tokenizer(spec)
    tok.chat_template = None                        # base checkpoints ship without one
    model = build_model(spec, ModelConfig(**SMALL), tok)
    model.save_pretrained(tmp_path / "ckpt")
    tok.save_pretrained(tmp_path / "ckpt")
    return tmp_path / "ckpt"


def test_hf_checkpoint_with_lora_round_trip(tmp_path):
    ckpt = _local_checkpoint(tmp_path)
    spec = get_backbone(f"hf:{ckpt}")
    assert spec.family == "mistral"
    tok = load_tokenizer(spec)
    assert "[INST]" in tok.chat_template            # the family's fallback template
    mcfg = ModelConfig(backbone=spec.id, lora=LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0,
                                                         target_modules=("q_proj", "v_proj")))
    model = build_model(spec, mcfg, tok)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.add_(0.1)
    save_model(model, tok, tmp_path / "run_model", spec)
    assert (tmp_path / "run_model" / "adapter_config.json").is_file()
    assert not (tmp_path / "run_model" / "model.safetensors").exists()   # adapter only, not the base
    again, tok2, spec2 = load_trained(tmp_path / "run_model")
    x = torch.tensor([[1, 10, 11, 12]])
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, again(input_ids=x).logits, atol=1e-5)
