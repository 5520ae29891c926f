import numpy as np
import pytest
from transformers import AutoTokenizer

from mistral_vision import render_ascii
from mistral_vision.errors import UserError
from mistral_vision.models.tokenizer import build_char_tokenizer, check_no_unknown


def test_round_trip_every_rendering(tmp_path):
    tok = build_char_tokenizer()
    imgs = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    arts = render_ascii(imgs, 28, 28) + render_ascii(imgs[:2], 100, 50)
    for art in arts:
        ids = tok(art, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(art)                      # one token per character
        assert tok.decode(ids) == art
    tok.save_pretrained(tmp_path / "t")
    again = AutoTokenizer.from_pretrained(tmp_path / "t")
    assert again(arts[0], add_special_tokens=False)["input_ids"] == tok(arts[0], add_special_tokens=False)["input_ids"]
    assert again.chat_template == tok.chat_template


def test_unknown_character_is_an_error():
    tok = build_char_tokenizer()
    text = "ab\u00e9c"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    with pytest.raises(UserError, match="character 'é' at position 2"):
        check_no_unknown(tok, ids, text, "prompt 0")
