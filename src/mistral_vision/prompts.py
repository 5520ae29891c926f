"""Prompt templates and chat samples (the Mistral fine-tuning JSONL format).

A sample is ``{"messages": [{"role": "user", "content": prompt}, {"role": "assistant",
"content": label_name}]}`` with an optional leading system message. Templates are a registry
keyed by id; any string containing ``{art}`` is also accepted as a literal template.
Not for: tokenization (the tokenizer's chat template does that) or file validation.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import UserError, one_of

TEMPLATES: dict[str, str] = {
    # The image alone: cheapest in tokens, the default for the tiny from-scratch models.
    "plain": "{art}",
    # A self-describing question, for pretrained checkpoints and the API route.
    "classify": ("Below is an ASCII-art rendering of a {dataset} image ({width}x{height} characters; "
                 "darker pixels use denser characters).\n{art}\n"
                 "Which class is it? Answer with exactly one of: {labels}."),
    # The LLaVA route's question: {art} is the <image> placeholder the tower's tokens replace.
    "ask": "{art}\nWhich {dataset} class is this image? Answer with exactly one of: {labels}.",
}

FIELDS = ("art", "labels", "dataset", "width", "height")


def resolve_template(template: str) -> str:
    """Registry id -> template text; a literal template must contain ``{art}``."""
    if template in TEMPLATES:
        return TEMPLATES[template]
    if "{art}" not in template:
        raise one_of("prompt template", template, TEMPLATES)
    try:
        template.format(**{f: "" for f in FIELDS})
    except (KeyError, IndexError, ValueError) as e:
        raise UserError(f"prompt template {template!r}: bad placeholder {e}; allowed: "
                        + ", ".join("{" + f + "}" for f in FIELDS)) from None
    return template


@dataclass(frozen=True)
class PromptFormat:
    template: str = "plain"
    system: str | None = None

    def user_text(self, art: str, label_names, dataset: str, width: int, height: int) -> str:
        return resolve_template(self.template).format(
            art=art, labels=", ".join(label_names), dataset=dataset, width=width, height=height)

    def messages(self, art: str, label_names, dataset: str, width: int, height: int,
                 answer: str | None = None) -> list[dict]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs.append({"role": "user", "content": self.user_text(art, label_names, dataset, width, height)})
        if answer is not None:
            msgs.append({"role": "assistant", "content": answer})
        return msgs
