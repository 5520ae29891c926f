"""mistral-vision: teach text LLMs (Mistral / LLaMA architectures) to see, and measure it.

Light at import: heavy modules (torch, transformers) load only when a function needs them.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["render_ascii", "ascii_to_image", "__version__"]


def __getattr__(name):
    if name in ("render_ascii", "ascii_to_image"):
        from .ascii import render

        return getattr(render, name)
    raise AttributeError(name)
