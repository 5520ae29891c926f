"""How a model holds its weights and activations while it trains (memory against precision).

``model.dtype: bfloat16`` (or float16) keeps a 7B model in half the memory, but AdamW steps on
half-precision weights round most updates away: at lr 2e-5 a bf16 weight of 0.02 moves by less
than half its spacing (~8e-5), so it does not move at all. As LLaVA (DeepSpeed) and HF Trainer
(mixed precision) do, every parameter some stage trains is held in float32 (the master weights),
the forward runs under autocast in the half type, and frozen parameters stay in the half type.
The saved model goes back to the dtype the config asked for. Also activation checkpointing
(``train.gradient_checkpointing``) through transformers' current call.
Not for: which parameters train (``stages.py``) or the loop itself (``loop.py``).
"""
from __future__ import annotations

from ..errors import UserError
from .stages import part_of

HALF = {"bfloat16": "bf16", "float16": "fp16"}


def autocast_precision(cfg, cuda: bool) -> str:
    """accelerate's ``mixed_precision`` for the run: ``train.mixed_precision``, or, when that is ``no``
    and the model is held in a half type, that type (the float32 master weights need autocast)."""
    precision = cfg.train.mixed_precision
    if precision == "no":
        precision = HALF.get(cfg.model.dtype, "no")
    if precision == "fp16" and not cuda:
        raise UserError("float16 training needs a GPU (its autocast and loss scaling are CUDA's); on CPU use "
                        "model.dtype bfloat16 or float32 and train.mixed_precision no or bf16")
    return precision


def accelerator(precision: str, **kwargs):
    """accelerate's ``Accelerator`` with this run's mixed precision, in a process that may have trained
    other runs before (``compare`` runs its cells in one process; so does the test suite).

    accelerate keeps one ``AcceleratorState`` per process and refuses a second precision; a
    single-process run resets it (the distributed setup, ``PartialState``, stays as it is).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") != precision and PartialState().num_processes == 1:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=precision, **kwargs)


def keep_trainable_fp32(model, stages, log=print) -> dict:
    """Hold every parameter that a stage of the run trains in float32 (in place; tied weights stay tied).

    Done once, before any stage or checkpoint is loaded, so a resumed run holds its weights exactly
    as the uninterrupted one. Returns ``{name: dtype it had}`` for :func:`restore_dtypes`.
    """
    import torch

    parts = set().union(*(st.trainable for st in stages))
    upcast = {}
    for name, p in model.named_parameters():
        if p.is_floating_point() and p.dtype != torch.float32 and part_of(name) in parts \
                and ".original_module." not in name:           # PEFT's frozen copy of a saved module
            upcast[name] = p.dtype
            p.data = p.data.float()
    if upcast:
        n = sum(p.numel() for name, p in model.named_parameters() if name in upcast)
        log(f"      trainable weights held in float32 ({n:,} params), the rest in "
            f"{str(next(iter(upcast.values()))).replace('torch.', '')}, forward under autocast")
    return upcast


def restore_dtypes(model, dtypes: dict) -> None:
    """Put the parameters :func:`keep_trainable_fp32` upcast back into their dtype (before saving)."""
    for name, p in model.named_parameters():
        if name in dtypes:
            p.data = p.data.to(dtypes[name])


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
