"""What a fine-tuning job costs: the price table (one place, user-editable) and exact, offline
token counts with the tokenizer of the model being fine-tuned (from mistral-common).

Not for: talking to the API. The numbers in ``PRICES`` are list prices in US dollars; edit
them here when Mistral changes its prices (``PRICES_TAKEN`` says when they were copied).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..errors import UserError, one_of

PRICES_TAKEN = "2024-11 (mistral.ai/pricing, fine-tuning section; check before relying on it)"
MINIMUM_FEE_PER_JOB = 4.0       # USD charged for a job however small


@dataclass(frozen=True)
class ModelPrice:
    tokenizer: str              # mistral-common tokenizer: v1 | v3 | v3-tekken | v7
    train_per_m: float          # USD per million training tokens (tokens x epochs)
    storage_per_month: float    # USD per month for keeping the fine-tuned model
    input_per_m: float          # USD per million prompt tokens when the fine-tuned model is queried
    output_per_m: float         # USD per million generated tokens


PRICES: dict[str, ModelPrice] = {
    "open-mistral-7b": ModelPrice("v3", 2.0, 2.0, 0.25, 0.25),
    "open-mistral-nemo": ModelPrice("v3-tekken", 1.0, 2.0, 0.15, 0.15),
    "mistral-small-latest": ModelPrice("v3", 4.0, 2.0, 0.2, 0.6),
    "codestral-latest": ModelPrice("v3", 3.0, 2.0, 0.2, 0.6),
    "mistral-large-latest": ModelPrice("v7", 9.0, 4.0, 2.0, 6.0),
}


def get_price(model: str) -> ModelPrice:
    if model not in PRICES:
        raise one_of("fine-tunable model", model, list(PRICES))
    return PRICES[model]


def mistral_tokenizer(version: str):
    """A mistral-common tokenizer by version (files ship inside the wheel: no network)."""
    try:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    except ImportError:
        raise UserError("token counts need mistral-common: pip install 'mistral-vision[mistral]'") from None
    makers = {"v1": MistralTokenizer.v1, "v3": MistralTokenizer.v3, "v7": MistralTokenizer.v7,
              "v3-tekken": lambda: MistralTokenizer.v3(is_tekken=True)}
    if version not in makers:
        raise one_of("mistral tokenizer", version, list(makers))
    try:
        return makers[version]()
    except Exception as e:     # the SentencePiece ones need the sentencepiece package
        raise UserError(f"cannot load Mistral's {version} tokenizer ({str(e).splitlines()[0]}); "
                        "pip install 'mistral-vision[mistral]'") from None


def sample_tokens(tok, messages: list[dict]) -> int:
    """Tokens of one training sample exactly as the instruct format encodes it (BOS ... EOS)."""
    from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage
    from mistral_common.protocol.instruct.request import InstructRequest

    kinds = {"system": SystemMessage, "user": UserMessage, "assistant": AssistantMessage}
    msgs = [kinds[m["role"]](content=m["content"]) for m in messages]
    return len(tok.instruct_tokenizer.encode_instruct(InstructRequest(messages=msgs)).tokens)


def estimate(samples: list[list[dict]], model: str, epochs: float | None = None, steps: int | None = None,
             batch_tokens: int = 131072, predict_samples: int = 0) -> dict:
    """Token bill and cost of fine-tuning ``model`` on ``samples`` (lists of chat messages).

    Args:
        epochs / steps: how long the job trains (one of them; default one epoch).
        batch_tokens: tokens per optimizer step on Mistral's side (sequences are packed), used
            to convert between steps and epochs.
        predict_samples: also price querying the fine-tuned model on this many prompts.
    """
    if not samples:
        raise UserError("no samples to estimate")
    price = get_price(model)
    tok = mistral_tokenizer(price.tokenizer)
    counts = [sample_tokens(tok, m) for m in samples]
    total = sum(counts)
    if steps is not None:
        epochs = steps * batch_tokens / total
    epochs = 1.0 if epochs is None else epochs
    trained = total * epochs
    cost = max(MINIMUM_FEE_PER_JOB, trained / 1e6 * price.train_per_m)
    prompt_tokens = statistics.mean(counts) * predict_samples
    return {"model": model, "tokenizer": price.tokenizer, "samples": len(counts), "tokens_total": total,
            "tokens_min": min(counts), "tokens_median": statistics.median(counts), "tokens_max": max(counts),
            "epochs": epochs, "steps": max(1, round(trained / batch_tokens)), "trained_tokens": trained,
            "train_cost_usd": cost, "storage_usd_per_month": price.storage_per_month,
            "predict_samples": predict_samples,
            "predict_cost_usd": prompt_tokens / 1e6 * price.input_per_m + predict_samples * 5 / 1e6 * price.output_per_m,
            "prices_taken": PRICES_TAKEN}
