"""Feature extraction for ``select`` beside label scoring, on the same items: items/s of each feature kind
and loss measure against the scorer's questions/s.

For each VQA CPU config: a trained run (``runs/<config name>`` if it is there, else a fresh random-init
model of the config's shape saved into a temporary run folder) reads the first N validation questions
that are answered by label scoring. The scorer (``QuestionAnswerer``, eval.batch_size) answers them;
then every feature kind and measure is extracted from the same items at the same batch size, the
model loaded beforehand as the scorer's is (``compute``), and once more through ``run_features`` /
``run_losses`` from an empty cache (``call``: loading the model, checking the run fits the data, and
writing the shards included), and a third time from the complete cache (``cached``).

    python benchmarks/bench_select_features.py [--questions 1500] [--only llava] [--set KEY=VALUE]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, data_dir, table  # noqa: E402

CONFIGS = ["mnist-vqa-llava-cpu", "mnist-vqa-ascii-cpu"]


def reference_run(cfg, tmp):
    """(run folder, trained?): the config's trained run, else a random-init one saved under ``tmp``."""
    from dataclasses import replace

    import torch

    from mistral_vision.config import dump_config
    from mistral_vision.models.build import build_run_model, save_run_model

    run = ROOT / "runs" / cfg.name
    if (run / "model" / "manifest.json").is_file():
        return run, True
    cfg = replace(cfg, runs_dir=str(tmp))
    torch.manual_seed(0)
    model, processor = build_run_model(cfg, cfg.run_dir, log=lambda *_: None)
    dump_config(cfg, cfg.run_dir)
    save_run_model(model, processor, cfg.run_dir / "model", cfg)
    return cfg.run_dir, False


def scorer_rate(cfg, run, qs) -> float:
    from mistral_vision.infer.loading import load_for_inference
    from mistral_vision.infer.questions import QuestionAnswerer

    loaded = load_for_inference(cfg, run)
    ans = QuestionAnswerer(loaded.model, loaded.task, cfg.eval.score_eos)
    idx = list(range(len(qs.items)))
    bs = cfg.eval.batch_size
    ans.answer(qs, idx[:8])                                          # warm up
    t = time.perf_counter()
    for i in range(0, len(idx), bs):
        ans.answer(qs, idx[i:i + bs])
    return len(idx) / (time.perf_counter() - t)


def extraction_rates(cfg, run, qs, what: str, tmp) -> tuple[float, float, float]:
    """items/s: computing only (model loaded), the whole call from an empty cache, and from the full cache."""
    from mistral_vision.select.features import MEASURES, Extractor, run_features, run_losses

    bs = cfg.eval.batch_size
    ex = Extractor(cfg, run, what, bs)
    ex.rows(qs, 0, min(8, len(qs.items)))                           # warm up
    t = time.perf_counter()
    ex.rows(qs, 0, len(qs.items))
    compute = len(qs.items) / (time.perf_counter() - t)
    get = run_losses if what in MEASURES else run_features
    rates = []
    for _ in range(2):                                               # empty cache, then complete
        t = time.perf_counter()
        get(run, qs, what, tmp / "cache", bs, log=lambda *_: None)
        rates.append(len(qs.items) / (time.perf_counter() - t))
    return compute, rates[0], rates[1]


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=1500)
    ap.add_argument("--only", help="only the configs whose name contains this")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides (a quick check: data.train_canvases=200)")
    args = ap.parse_args(argv)
    import tempfile
    from pathlib import Path

    import torch

    from mistral_vision.config import load_config
    from mistral_vision.data.questions import QuestionSet
    from mistral_vision.data.run_data import load_questions
    from mistral_vision.select.features import FEATURE_KINDS, MEASURES

    rows, out = [], []
    for name in CONFIGS:
        if args.only and args.only not in name:
            continue
        cfg = load_config(ROOT / "configs" / f"{name}.yaml", [f"data.data_dir={data_dir()}", "data.offline=true"]
                          + args.set)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            run, trained = reference_run(cfg, tmp)
            qs = load_questions(cfg.data, "valid")
            scored = [it for it in qs.items if it.candidates is not None]     # what answer mode "score" scores
            qs = QuestionSet(qs.name, qs.images, scored[:args.questions], qs.label_names)
            base = scorer_rate(cfg, run, qs)
            model = "trained" if trained else "random init"
            rows.append([name, model, "label scoring (scorer)", f"{base:,.0f}", "-", "-", "1.00"])
            for what in FEATURE_KINDS + MEASURES:
                if what == "tower-pooled" and cfg.route != "llava":
                    continue
                compute, call, cached = extraction_rates(cfg, run, qs, what, tmp / what)
                out.append({"config": name, "what": what, "compute": compute, "call": call, "cached": cached,
                            "scorer": base, "items": len(qs.items)})
                rows.append([name, model, what, f"{compute:,.0f}", f"{call:,.0f}", f"{cached:,.0f}",
                             f"{compute / base:.2f}"])
    print(table(["config", "model", "what", "items/s (compute)", "items/s (call)", "items/s (cached)",
                 "compute / scorer"], rows))
    print(f"\n{torch.get_num_threads()} torch threads, torch {torch.__version__}; the first {args.questions} "
          "label-scored validation questions, eval.batch_size; answer mode 'score' (answer_questions' default)")
    return out


if __name__ == "__main__":
    main()
