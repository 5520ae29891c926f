"""The ASCII classification task: images -> ASCII -> chat prompt -> token ids, and labels.

Ties one ASCII format, one prompt format and one tokenizer together so that training,
scoring and the JSONL export build exactly the same text. Label continuations (answer +
EOS, as the chat template writes them) are tokenized once per class; a sample's ids are its
prompt ids followed by its label's ids, which is exact because every prompt ends with the
same template text. Not for: the training loop or file formats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ascii.render import render_ascii
from .errors import UserError
from .prompts import PromptFormat

_PROBE = "\x00ART\x00"


@dataclass
class AsciiTask:
    tokenizer: object
    label_names: tuple[str, ...]
    dataset: str
    width: int
    height: int
    ramp: str
    invert: bool = False
    crop: int = 0
    prompt: PromptFormat = PromptFormat()

    def __post_init__(self):
        self._prefix, self._suffix = self._split_template()
        self.label_ids = self._label_ids()

    @classmethod
    def from_config(cls, cfg, tokenizer, label_names):
        a = cfg.ascii
        return cls(tokenizer, tuple(label_names), cfg.data.dataset, a.width, a.height, a.ramp, a.invert, a.crop,
                   PromptFormat(cfg.prompt.template, cfg.prompt.system))

    # -- text ---------------------------------------------------------------------------
    def render(self, images) -> list[str]:
        return render_ascii(images, self.width, self.height, self.ramp, self.invert, self.crop)

    def messages(self, art: str, answer: str | None = None) -> list[dict]:
        return self.prompt.messages(art, self.label_names, self.dataset, self.width, self.height, answer)

    def _chat_text(self, messages, generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def _split_template(self) -> tuple[str, str] | tuple[None, None]:
        """Prompt text around the art, if the chat template copies user content verbatim."""
        text = self._chat_text(self.messages(_PROBE), True)
        if text.count(_PROBE) != 1:
            return None, None
        prefix, suffix = text.split(_PROBE)
        check = self._chat_text(self.messages("x\n y"), True)
        return (prefix, suffix) if check == prefix + "x\n y" + suffix else (None, None)

    def prompt_texts(self, arts: list[str]) -> list[str]:
        if self._prefix is not None:
            return [self._prefix + a + self._suffix for a in arts]
        return [self._chat_text(self.messages(a), True) for a in arts]

    # -- ids ----------------------------------------------------------------------------
    def _label_ids(self) -> list[list[int]]:
        """Token ids of each label's continuation (answer + EOS) after the generation prompt."""
        probe = self.messages("x")
        prompt = self._chat_text(probe, True)
        prompt_ids = self._encode([prompt])[0]
        out = []
        for name in self.label_names:
            full = self._chat_text(probe + [{"role": "assistant", "content": name}], False)
            if not full.startswith(prompt):
                raise UserError("the tokenizer's chat template does not continue the generation prompt with the "
                                "answer; set a chat template whose prompt is a prefix of the full conversation")
            ids = self._encode([full])[0]
            if ids[:len(prompt_ids)] != prompt_ids:
                raise UserError(f"tokenizing label {name!r} changes the prompt's tokens; use another chat template")
            tail = ids[len(prompt_ids):]
            if self.tokenizer.eos_token_id is not None and (not tail or tail[-1] != self.tokenizer.eos_token_id):
                tail = tail + [self.tokenizer.eos_token_id]
            out.append(tail)
        if len({tuple(t) for t in out}) != len(out):
            raise UserError("two labels tokenize identically; label names must differ")
        return out

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def encode_prompts(self, images) -> list[list[int]]:
        from .models.tokenizer import check_no_unknown

        texts = self.prompt_texts(self.render(images))
        ids = self._encode(texts)
        unk = self.tokenizer.unk_token_id
        for i, (t, row) in enumerate(zip(texts, ids)):
            if unk is not None and unk in row:
                check_no_unknown(self.tokenizer, row, t, f"prompt {i}")
        return ids

    def chat_samples(self, images, labels) -> list[dict]:
        arts = self.render(images)
        return [{"messages": self.messages(a, None if y < 0 else self.label_names[y])}
                for a, y in zip(arts, np.asarray(labels).tolist())]
