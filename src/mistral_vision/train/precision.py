"""How a model holds its weights and activations while it trains (memory against precision).

Activation checkpointing (``train.gradient_checkpointing``) through transformers' current call.
Not for: which parameters train (``stages.py``) or the loop itself (``loop.py``).
"""
from __future__ import annotations


def enable_activation_checkpointing(model) -> None:
    """Recompute activations in the backward pass instead of keeping them (7B checkpoints, long ASCII prompts).

    transformers 5.x renamed ``gradient_checkpointing_enable`` (now a deprecated alias that warns)
    to ``activation_checkpointing_enable``; a PEFT model passes the call to its base model.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:                                      # transformers releases before the rename
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()     # frozen embeddings still need grads to flow
