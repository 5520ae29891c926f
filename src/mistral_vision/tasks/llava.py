"""The LLaVA route's classification task: images -> the tower's pixel values + a prompt with ``<image>``.

The user turn is the prompt template with ``{art}`` replaced by the ``<image>`` placeholder;
the chat template writes the conversation and ``LlavaProcessor`` expands the placeholder into
one image token per projected feature. Every image shares that prompt, so its ids are
computed once; each batch's ``pixel_values`` come from the tower's own image processor
(which converts and resizes a 28x28 grayscale digit to what the tower expects). Label ids
come from the chat template as on the ASCII route (``chat.py``). Built without a processor
(galleries) it only preprocesses images. Not for: building the model (``models/llava.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..prompts import PromptFormat
from .base import Encoded, Examples, Seen
from .chat import ChatTask

PRECOMPUTE_BYTES = 1 << 30


@dataclass
class LlavaTask(ChatTask):
    processor: object                     # LlavaProcessor, or None (preprocessing only)
    label_names: tuple[str, ...]
    dataset: str
    image_processor: object
    prompt: PromptFormat = PromptFormat()

    seen_title = "tower input"

    def __post_init__(self):
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        super().__post_init__()
        self._prompt_ids = None
        self._image_id = self._n_image = None

    @classmethod
    def from_config(cls, cfg, processor, label_names):
        from ..models.vision import image_processor

        ip = processor.image_processor if processor is not None else image_processor(cfg.vision)
        return cls(processor, tuple(label_names), cfg.data.dataset, ip,
                   PromptFormat(cfg.prompt.template, cfg.prompt.system))

    def content_messages(self, content: str, answer: str | None = None) -> list[dict]:
        return self.prompt.messages(content, self.label_names, self.dataset, 0, 0, answer)

    def messages(self, image: np.ndarray, answer: str | None = None) -> list[dict]:
        """Chat messages of one image: the user turn holds ``<image>`` where the tower's tokens go."""
        from ..models.llava import IMAGE_TOKEN

        return self.content_messages(IMAGE_TOKEN, answer)

    @property
    def prompt_ids(self) -> list[int]:
        """The prompt every image shares, with ``<image>`` expanded by the processor."""
        if self._prompt_ids is None:
            from ..models.llava import IMAGE_TOKEN, expand_prompt

            self._prompt_ids = expand_prompt(self.processor, self.prompt_texts([IMAGE_TOKEN])[0])
        return self._prompt_ids

    def pixel_values(self, images: np.ndarray):
        """(N, C, H, W) float tensor from the tower's image processor, for (N, H, W) uint8 images."""
        import torch

        if len(images) == 0:
            return torch.zeros((0, 1, 1, 1))
        from ..models.vision import processor_inputs

        images = self._fit(images)
        out = self.image_processor(images=processor_inputs(images, self.image_processor), return_tensors="pt")
        return out["pixel_values"]

    def image_extras(self, images) -> dict:
        return {"pixel_values": self.pixel_values(images)}

    def finish_ids(self, ids, mask):
        """Each ``<image>`` token becomes as many image tokens as the tower gives features (never trained on)."""
        from ..models.llava import IMAGE_TOKEN, image_token_count

        if self._image_id is None:
            self._image_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
            self._n_image = image_token_count(self.processor)
        out_ids, out_mask = [], []
        for t, m in zip(ids, mask):
            if t == self._image_id:
                out_ids += [t] * self._n_image
                out_mask += [0] * self._n_image
            else:
                out_ids.append(t)
                out_mask.append(m)
        return out_ids, out_mask

    def _fit(self, images):
        """Images as the processor takes them: one array when they share a shape; for a processor that does
        not resize (the tiny towers'), each resized to its size and made grayscale first."""
        size = getattr(self.image_processor, "size", None) or {}
        if getattr(self.image_processor, "do_resize", True) or "height" not in size:
            return np.asarray(images) if all(im.shape == images[0].shape for im in images) else list(images)
        side = (size["height"], size["width"])
        if all(im.shape == side for im in images):
            return np.asarray(images)
        from PIL import Image

        def fit(im):
            pil = Image.fromarray(np.asarray(im, np.uint8)).convert("L")
            return np.asarray(pil.resize(side[::-1], Image.BILINEAR))

        return np.stack([fit(im) for im in images])

    def chat_inputs(self, image: np.ndarray, question: str) -> Encoded:
        """A free question about one image: ``<image>`` (expanded by the processor), then the question."""
        from ..models.llava import IMAGE_TOKEN, expand_prompt

        content = self._chat_text(self.chat_messages(IMAGE_TOKEN, question), True)
        return Encoded([expand_prompt(self.processor, content)], {"pixel_values": self.pixel_values(image[None])})

    def encode(self, images) -> Encoded:
        ids = self.prompt_ids
        return Encoded([list(ids) for _ in range(len(images))], {"pixel_values": self.pixel_values(images)})

    def examples(self, images, labels) -> Examples:
        """Pixel values are made once for the split when they fit in ``PRECOMPUTE_BYTES`` (tiny towers),
        else per batch (a 336-px tower's would take ~74 GB for MNIST)."""
        from .batch import example

        ids = self.prompt_ids
        pairs = [example(ids, self.label_ids[y]) for y in np.asarray(labels).tolist()]
        return Examples(pairs, **self.image_payload(images))

    text_sees_pixels = False

    def image_payload(self, images) -> dict:
        """Pixel values made once when they fit in ``PRECOMPUTE_BYTES``, else per batch (lazy)."""
        if len(images) == 0:
            return {}
        per_image = self.pixel_values(images[:1]).numel() * 4
        if per_image * len(images) <= PRECOMPUTE_BYTES and isinstance(images, (np.ndarray, list)):
            return {"extras": {"pixel_values": self.pixel_values(images)}}
        return {"lazy": {"pixel_values": (images, self.pixel_values)}}

    def seen(self, images: np.ndarray) -> list[Seen]:
        """The pixels the tower received, mapped back to 0..255 (grayscale, or RGB for 3-channel towers)."""
        pv = self.pixel_values(images).float().numpy()
        mean = np.asarray(self.image_processor.image_mean, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.image_processor.image_std, np.float32).reshape(1, -1, 1, 1)
        scale = getattr(self.image_processor, "rescale_factor", 1 / 255)
        px = np.clip((pv * std + mean) / scale, 0, 255).round().astype(np.uint8)
        return [Seen(p[0] if p.shape[0] == 1 else p.transpose(1, 2, 0)) for p in px]
