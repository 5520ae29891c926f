"""Loading a run's trained model for inference: one place for device, dtype, threads and the task.

``predict``, question answering and ``chat`` all need the same four things from a run folder:
the saved model on the right device in the right dtype, its tokenizer or processor, and the
task that turns images into the ids that model was trained on. Not for: exporting (which keeps
the run's dtype on any device, ``export.py``) or training (``train/``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class LoadedRun:
    """A run's model in eval mode, its tokenizer or processor, the task built for it, and the device."""

    model: object
    processor: object
    task: object
    device: str


def load_for_inference(cfg, run_dir: str | Path, label_names: tuple[str, ...] | None = None) -> LoadedRun:
    """The model saved in ``run_dir/model`` with its task, ready to score or generate.

    Args:
        cfg: the run's config (``load_run_config(run_dir)``).
        label_names: the class names the task scores; None takes them from the run's data
            (a classification dataset's classes, a VQA set's base classes, none for LLaVA JSON).
    """
    import torch

    from ..data.run_data import label_names_for
    from ..models.build import load_run_model
    from ..tasks import make_task

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # The run's dtype (bf16 on a GPU recipe) only where it is fast; CPU inference stays in fp32.
    model, processor, _ = load_run_model(Path(run_dir) / "model", cfg.model.dtype if device == "cuda" else "float32",
                                         cfg)
    model.to(device)
    names = label_names_for(cfg.data) if label_names is None else tuple(label_names)
    return LoadedRun(model, processor, make_task(cfg, processor, names), device)
