"""What both routes' classification tasks share: a chat template around the image, and label ids.

A task puts the image (its ASCII art, or LLaVA's ``<image>`` placeholder) into the user turn
of a prompt template and lets the tokenizer's chat template write the conversation. Label
continuations (answer + EOS, exactly as the template writes them) are tokenized once per
class; a training sample is its prompt ids followed by its label's ids, which is exact
because every prompt ends with the same template text - checked here, once, for every label.
Not for: what goes into the user turn (the route's task).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UserError

if TYPE_CHECKING:
    from .base import Examples

_PROBE = "\x00ART\x00"


def assistant_mask(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]] | None:
    """(ids, mask) of a conversation, mask 1 on every assistant turn's tokens, from the chat template's own
    ``{% generation %}`` blocks; None when the template has none (then callers diff prompt and conversation)."""
    import re

    if not re.search(r"{%-?\s*generation\s*-?%}", getattr(tokenizer, "chat_template", None) or ""):
        return None
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    return list(out["input_ids"]), list(out["assistant_masks"])


def conversation_mask(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(ids, mask) of a conversation, mask 1 on every assistant turn (+ its EOS): from the template's
    ``{% generation %}`` blocks, else from where each assistant turn's text starts and ends."""
    got = assistant_mask(tokenizer, messages)
    if got is not None:
        return got
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:k], tokenize=False, add_generation_prompt=True)
        upto = tokenizer.apply_chat_template(messages[:k + 1], tokenize=False)
        if not (full.startswith(upto) and upto.startswith(before)):
            raise UserError(f"the chat template does not write assistant turn {k} as a continuation of the turns "
                            "before it; set a chat template with {% generation %} blocks")
        spans.append((len(before), len(upto)))
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(a <= s < b for a, b in spans)) for s, _e in enc["offset_mapping"]]
    return list(enc["input_ids"]), mask


def check_captions(items, template: str) -> None:
    """Refuse conversations that are not captions (one image prompt, one description) under a captions-only
    chat template. Config validation refuses question data it can name (``stages[i].data``); a stage's own
    LLaVA JSON file is only known here. A caption is typed ``caption``, or untyped (``open``) with one
    exchange and no answer options - LCS-558K's shape; ScienceQA's lettered options are questions."""
    for it in items:
        roles = [r for r, _ in it.turns]
        if it.type == "caption" or (it.type == "open" and roles == ["human", "gpt"] and not it.candidates):
            continue
        what = f"a {it.type} question" if roles == ["human", "gpt"] else f"a conversation of {len(roles)} turns"
        raise UserError(f"chat template {template} is for captions only, but sample {it.id!r} is {what}; give this "
                        "stage a template with roles (stages[i].template), or caption data")


class ChatTask:
    """Base of the chat-formatted tasks; subclasses set ``tokenizer``, ``label_names`` and ``content_messages``."""

    tokenizer: object
    label_names: tuple[str, ...]
    template: str | None = None     # the chat template id the task was made with (None: the tokenizer's own)

    def __post_init__(self):
        self._prefix = self._suffix = None
        self.label_ids = []
        if self.tokenizer is not None:
            self._prefix, self._suffix = self._split_template()
            self.label_ids = self._label_ids()

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def eos_id(self) -> int | None:
        return self.tokenizer.eos_token_id

    def content_messages(self, content: str, answer: str | None = None) -> list[dict]:
        raise NotImplementedError

    def chat_messages(self, image_text: str, question: str) -> list[dict]:
        """The user turn of a free question about one image (``chat``): the trained prompt when
        nothing is asked, else the image then the question, as LLaVA asks. A classification
        template's own question is replaced by the one asked, not repeated after it."""
        msgs = self.content_messages(image_text)
        if question:
            msgs[-1] = {"role": "user", "content": image_text + "\n" + question}
        return msgs

    # -- conversations (question sets): the route says how an image enters a turn ------------
    def turn_messages(self, turns: list[tuple[str, str]], image) -> list[dict]:
        """Chat messages of LLaVA-style turns (``human`` / ``gpt``), the image placed by the route: each
        ``<image>`` becomes :meth:`image_text`, or stays for :meth:`finish_ids` when that is None."""
        from ..data.llava_json import IMAGE_PLACEHOLDER

        stand_in = self.image_text(image)
        return self.system_messages() + [
            {"role": {"human": "user", "gpt": "assistant"}.get(role, role),      # "system" stays system
             "content": text if stand_in is None else text.replace(IMAGE_PLACEHOLDER, stand_in)}
            for role, text in turns]

    def image_text(self, image) -> str | None:
        """The text an image becomes inside a turn (ASCII art); None: ``<image>`` stays (LLaVA)."""
        return None

    def image_extras(self, images) -> dict:
        """Batch-first tensors of images (``pixel_values`` on the LLaVA route; nothing for ASCII)."""
        return {}

    def finish_ids(self, ids: list[int], mask: list[int]) -> tuple[list[int], list[int]]:
        """Ids as the model eats them (LLaVA: each ``<image>`` expanded into the tower's tokens)."""
        return ids, mask

    def system_messages(self) -> list[dict]:
        system = getattr(getattr(self, "prompt", None), "system", None)
        return [{"role": "system", "content": system}] if system else []

    def conversation_ids(self, turns, image) -> tuple[list[int], list[int]]:
        """(input ids, labels): labels keep every assistant turn (+ EOS), -100 elsewhere."""
        from .batch import IGNORE

        ids, mask = conversation_mask(self.tokenizer, self.turn_messages(turns, image))
        ids, mask = self.finish_ids(ids, mask)
        if not any(mask):
            raise UserError("a conversation has no assistant turn to train on")
        return ids, [t if m else IGNORE for t, m in zip(ids, mask)]

    def question_ids(self, turns, image) -> list[int]:
        """Prompt ids of the conversation up to its last human turn, with the generation prompt."""
        last = max(i for i, (r, _) in enumerate(turns) if r == "human")
        text = self._chat_text(self.turn_messages(turns[:last + 1], image), True)
        ids = self._encode([text])[0]
        return self.finish_ids(ids, [0] * len(ids))[0]

    def image_payload(self, images) -> dict:
        """``Examples`` keyword arguments carrying the images' tensors (none: the text holds the image)."""
        return {}

    text_sees_pixels = True     # the prompt's text changes with the pixels (ASCII art); False: only extras do

    def conversation_examples(self, items, images, pairs=None) -> Examples:
        """Training examples of question-set items about ``images`` (every assistant turn trained);
        ``pairs`` from an earlier call are reused when only the image tensors changed."""
        import numpy as np

        from .base import Examples

        if pairs is None:
            from ..models.chat_templates import CAPTION_TEMPLATES

            if self.template in CAPTION_TEMPLATES:
                check_captions(items, self.template)
            pairs = [self.conversation_ids(it.turns, images[it.image] if it.image >= 0 else None) for it in items]
        image_of = np.asarray([it.image for it in items], np.int64)
        return Examples(pairs, image_of=image_of, **self.image_payload(images))

    def answer_ids(self, answers) -> list[list[int]]:
        """Token ids of each candidate answer's continuation (answer + EOS) after the generation prompt."""
        return self._label_ids(tuple(answers))

    def _chat_text(self, messages, generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)

    def _split_template(self) -> tuple[str, str] | tuple[None, None]:
        """Prompt text around the art, if the chat template copies user content verbatim."""
        text = self._chat_text(self.content_messages(_PROBE), True)
        if text.count(_PROBE) != 1:
            return None, None
        prefix, suffix = text.split(_PROBE)
        check = self._chat_text(self.content_messages("x\n y"), True)
        return (prefix, suffix) if check == prefix + "x\n y" + suffix else (None, None)

    def prompt_texts(self, arts: list[str]) -> list[str]:
        if self._prefix is not None:
            return [self._prefix + a + self._suffix for a in arts]
        return [self._chat_text(self.content_messages(a), True) for a in arts]

    # -- ids ----------------------------------------------------------------------------
    def _label_ids(self, names=None) -> list[list[int]]:
        """Token ids of each label's continuation (answer + EOS) after the generation prompt."""
        probe = self.content_messages("x")
        prompt = self._chat_text(probe, True)
        prompt_ids = self._encode([prompt])[0]
        out = []
        for name in (self.label_names if names is None else names):
            full = self._chat_text(probe + [{"role": "assistant", "content": name}], False)
            if not full.startswith(prompt):
                raise UserError("the tokenizer's chat template does not continue the generation prompt with the "
                                "answer; set a chat template whose prompt is a prefix of the full conversation")
            ids = self._encode([full])[0]
            if ids[:len(prompt_ids)] != prompt_ids:
                raise UserError(f"tokenizing label {name!r} changes the prompt's tokens; use another chat template")
            tail = self._masked_answer(probe, name, ids, len(prompt_ids)) or ids[len(prompt_ids):]
            if self.tokenizer.eos_token_id is not None and (not tail or tail[-1] != self.tokenizer.eos_token_id):
                tail = tail + [self.tokenizer.eos_token_id]
            out.append(tail)
        if len({tuple(t) for t in out}) != len(out):
            raise UserError("two labels (or candidate answers) tokenize identically; they must differ")
        return out

    def _masked_answer(self, probe, name, ids, n_prompt) -> list[int] | None:
        """The answer as the template's assistant mask marks it (None without generation tags)."""
        got = assistant_mask(self.tokenizer, probe + [{"role": "assistant", "content": name}])
        if got is None:
            return None
        m_ids, mask = got
        marked = [i for i, m in enumerate(mask) if m]
        if m_ids != ids or not marked or marked[0] != n_prompt or marked != list(range(marked[0], marked[-1] + 1)):
            raise UserError(f"the chat template's assistant mask for label {name!r} is not the text right after the "
                            "generation prompt; put {% generation %} around the answer (+ EOS) only")
        return ids[marked[0]:marked[-1] + 1]

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

