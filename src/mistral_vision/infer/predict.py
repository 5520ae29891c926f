"""Local label-scored prediction: batches of images -> class log-likelihoods -> records.

Loads the run's trained model, scores every class for each image (with the run's or the
requested test-time views) and hands the records to the caller's appender batch by batch.
Not for: which images still need predicting or the file they go to (``records.py``), or
choosing between local and API prediction (``mistral_vision/predict.py``).
"""
from __future__ import annotations

import sys
import time

import numpy as np


def predict_local(cfg, run_dir, data, todo: list[int], write, batch_size: int | None = None, progress: bool = True,
                  tta: str = "none", desc: str = "predict") -> float:
    """Score images ``todo`` of ``data`` with the run's model, passing records to ``write``; -> seconds."""
    import torch
    from tqdm.auto import tqdm

    from .loading import load_for_inference
    from .records import prediction_record
    from .scorer import LabelScorer
    from ..data.augment import tta_views
    from .tta import score_views

    loaded = load_for_inference(cfg, run_dir, data.label_names)
    task = loaded.task
    scorer = LabelScorer(loaded.model, task.label_ids, task.pad_id, task.eos_id, cfg.eval.score_eos)
    bs = batch_size or cfg.eval.batch_size
    views = tta_views(tta)
    t0 = time.time()
    show_bar = progress and sys.stderr.isatty()
    with tqdm(total=len(todo), disable=not show_bar, desc=desc, unit="img", mininterval=1.0,
              dynamic_ncols=True) as bar:
        for start in range(0, len(todo), bs):
            sel = np.asarray(todo[start:start + bs])
            probs = torch.softmax(score_views(scorer, task, data.images[sel], views), -1).numpy()
            recs = []
            for row, i in enumerate(sel.tolist()):
                pred = int(probs[row].argmax())
                recs.append(prediction_record(data, i, pred, prob=round(float(probs[row, pred]), 6),
                                              probs=[round(float(p), 6) for p in probs[row]]))
            write(recs)
            bar.update(len(sel))
    return time.time() - t0
