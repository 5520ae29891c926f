"""The ASCII route's classification task: images -> ASCII -> chat prompt -> token ids, and labels.

Ties one ASCII format, one prompt format and one tokenizer together so that training,
scoring and the JSONL export build exactly the same text. Label continuations (answer +
EOS, as the chat template writes them) are tokenized once per class; a sample's ids are its
prompt ids followed by its label's ids, which is exact because every prompt ends with the
same template text. Built without a tokenizer it only renders (galleries of API runs).
Not for: the training loop or file formats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ascii.render import ascii_to_image, render_ascii
from ..prompts import PromptFormat
from .base import Encoded, Examples, Seen
from .chat import ChatTask

@dataclass
class AsciiTask(ChatTask):
    tokenizer: object
    label_names: tuple[str, ...]
    dataset: str
    width: int
    height: int
    ramp: str
    invert: bool = False
    crop: int = 0
    prompt: PromptFormat = PromptFormat()

    @classmethod
    def from_config(cls, cfg, tokenizer, label_names):
        a = cfg.ascii
        return cls(tokenizer, tuple(label_names), cfg.data.dataset, a.width, a.height, a.ramp, a.invert, a.crop,
                   PromptFormat(cfg.prompt.template, cfg.prompt.system))

    # -- text ---------------------------------------------------------------------------
    def render(self, images) -> list[str]:
        return render_ascii(images, self.width, self.height, self.ramp, self.invert, self.crop)

    def content_messages(self, art: str, answer: str | None = None) -> list[dict]:
        return self.prompt.messages(art, self.label_names, self.dataset, self.width, self.height, answer)

    def messages(self, image: np.ndarray, answer: str | None = None) -> list[dict]:
        """Chat messages of one (H, W) image, rendered into the user turn."""
        return self.content_messages(self.render(image[None])[0], answer)

    seen_title = "from ASCII"

    def image_text(self, image) -> str | None:
        """The image's ASCII art, where ``<image>`` stands in a turn."""
        return self.render(np.asarray(image)[None])[0] if image is not None else None

    def seen(self, images: np.ndarray) -> list[Seen]:
        """The art each image became, and that art decoded back to pixels."""
        return [Seen(ascii_to_image(art, self.ramp), art) for art in self.render(images)]

    def chat_inputs(self, image: np.ndarray, question: str) -> Encoded:
        """A free question about one image: the rendered art, then the question, in the user turn."""
        art = self.render(image[None])[0]
        text = self._chat_text(self.chat_messages(art, question), True)
        return Encoded(self._encode([text]))

    def encode(self, images) -> Encoded:
        from ..models.tokenizer import check_no_unknown

        texts = self.prompt_texts(self.render(images))
        ids = self._encode(texts)
        unk = self.tokenizer.unk_token_id
        for i, (t, row) in enumerate(zip(texts, ids)):
            if unk is not None and unk in row:
                check_no_unknown(self.tokenizer, row, t, f"prompt {i}")
        return Encoded(ids)

    def examples(self, images, labels) -> Examples:
        from .batch import example

        prompts = self.encode(images)
        return Examples([example(p, self.label_ids[y]) for p, y in zip(prompts.ids, np.asarray(labels).tolist())])

    def chat_samples(self, images, labels) -> list[dict]:
        arts = self.render(images)
        return [{"messages": self.content_messages(a, None if y < 0 else self.label_names[y])}
                for a, y in zip(arts, np.asarray(labels).tolist())]
