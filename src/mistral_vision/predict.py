"""``predict``: a run's predictions for a dataset split, an image folder or one image, on any backend.

Resolves the images, opens the resumable predictions file (``infer/records.py``), and hands
the missing images to the run's backend through one table: ``local`` label-scores with the
trained model (``infer/predict.py``), ``mistral-api`` asks the fine-tuned model behind
Mistral's chat API (``api/predict.py``). Not for: metrics (``eval/evaluate.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import one_of


@dataclass(frozen=True)
class Backend:
    fingerprint: Callable   # (cfg, run_dir, model) -> the model identity recorded beside the file
    score: Callable         # (cfg, run_dir, data, todo, write, opts) -> (records written, seconds)
    tta: bool               # can score test-time views


def _local_fingerprint(cfg, run_dir, model):
    from .infer.records import model_fingerprint

    return model_fingerprint(run_dir)


def _local_score(cfg, run_dir, data, todo, write, opts):
    from .infer.predict import predict_local

    seconds = predict_local(cfg, run_dir, data, todo, write, opts["batch_size"], opts["progress"], opts["tta"],
                            f"predict {opts['stem']}")
    return len(todo), seconds


def _api_fingerprint(cfg, run_dir, model):
    from .api.predict import api_model

    return f"mistral-api:{api_model(cfg, run_dir, model)}"


def _api_score(cfg, run_dir, data, todo, write, opts):
    from .api.predict import api_model, score_with_api

    return score_with_api(cfg, data, todo, write, api_model(cfg, run_dir, opts["model"]), opts["server_url"],
                          opts["progress"])


BACKENDS: dict[str, Backend] = {
    "local": Backend(_local_fingerprint, _local_score, tta=True),
    "mistral-api": Backend(_api_fingerprint, _api_score, tta=False),
}


def predict(run_dir: str | Path, dataset: str | None = None, split: str | None = None, images: str | None = None,
            data_dir: str | None = None, offline: bool = False, limit: int | None = None,
            out: str | Path | None = None, batch_size: int | None = None, progress: bool = True,
            backend: str | None = None, model: str | None = None, server_url: str | None = None,
            tta: str | None = None):
    """Predict a split / folder / image with the run's model (local, or its API fine-tune) -> PredictResult.

    ``backend`` defaults to the run's; ``model`` / ``server_url`` apply to ``mistral-api``.
    ``tta`` (test-time augmentation views, ``infer/tta.py``) defaults to the run's ``eval.tta``;
    another choice writes to its own file (``<source>-tta-<name>.jsonl``).
    """
    from .config import load_run_config
    from .errors import UserError
    from .infer.records import PredictResult, open_predictions, resolve_images
    from .data.augment import tta_views
    from .io import JsonlAppender

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    backend = backend or cfg.backend
    if backend not in BACKENDS:
        raise one_of("backend", backend, BACKENDS)
    impl = BACKENDS[backend]
    tta = tta or cfg.eval.tta
    tta_views(tta)                      # unknown names fail before any work
    if not impl.tta and tta != "none":
        raise UserError(f"test-time augmentation ({tta}) is for local models; use --tta none with the API backend")
    data, stem = resolve_images(cfg, dataset, split, images, data_dir, offline, limit)
    if tta != cfg.eval.tta:              # not the run's own views: a file of their own
        stem = f"{stem}-tta-{tta}"
    out = Path(out) if out else run_dir / "predictions" / f"{stem}.jsonl"
    n_done, todo = open_predictions(out, impl.fingerprint(cfg, run_dir, model), tta, run_dir, stem, data)
    if not todo:
        return PredictResult(out, n_done, 0, 0.0, tta, data)
    opts = {"batch_size": batch_size, "progress": progress, "tta": tta, "stem": stem, "model": model,
            "server_url": server_url}
    with JsonlAppender(out) as log:
        written, seconds = impl.score(cfg, run_dir, data, todo, log.write, opts)
    return PredictResult(out, n_done + written, written, seconds, tta, data)
