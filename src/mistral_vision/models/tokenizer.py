"""Character-level tokenizer for the tiny from-scratch presets.

Built with Hugging Face ``tokenizers`` (a BPE model with no merges is exactly one token
per character) and wrapped as a transformers fast tokenizer, so it saves/loads with
``save_pretrained`` / ``AutoTokenizer.from_pretrained`` like any checkpoint's tokenizer.
Its chat template is minimal on purpose: every prompt character costs a token.
Not for: checkpoint tokenizers (they come with the checkpoint, see ``backbones.py``).
"""
from __future__ import annotations

from ..errors import UserError
from .chat_templates import TINY as TINY_CHAT_TEMPLATE

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<sep>")
# Newline plus all printable ASCII: any ASCII prompt and any ramp tokenizes without <unk>.
CHAR_ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))


def build_char_tokenizer():
    """A fresh character-level ``PreTrainedTokenizerFast`` (left padding, for scoring)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(list(SPECIAL_TOKENS) + list(CHAR_ALPHABET))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.add_special_tokens(list(SPECIAL_TOKENS))
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>",
                                  unk_token="<unk>", pad_token="<pad>", padding_side="left")
    tok.chat_template = TINY_CHAT_TEMPLATE
    return tok


def check_no_unknown(tokenizer, ids: list[int], text: str, where: str) -> None:
    """Refuse text the tokenizer cannot represent instead of silently mapping it to <unk>."""
    unk = tokenizer.unk_token_id
    if unk is None or unk not in ids:
        return
    for pos, ch in enumerate(text):
        piece = tokenizer(ch, add_special_tokens=False)["input_ids"]
        if unk in piece:
            raise UserError(f"{where}: character {ch!r} at position {pos} is not in the tokenizer's alphabet; "
                            "use ASCII text or a checkpoint tokenizer")
