"""How much of the answer survives the ASCII rendering? A small CNN as a reference reader
(the library's ``compare/ceiling.py``, which ``mistral-vision compare`` also runs per ASCII config).

For each shipped CPU config, a small convolutional network (2 conv layers + 1 hidden layer,
not a language model) is trained on exactly the pictures the LLM reads - the config's ASCII
art turned back into pixels with ``ascii_to_image`` (same crop, grid and ramp) - and, for
comparison, on the original 28x28 images. Both are scored on the same fixed validation
split. A CNN is a strong reader of small images, so its accuracy on the art is a practical
(not a proven) ceiling for what any reader of that art reaches in a short budget.

    python benchmarks/bench_ceiling.py [--epochs 8] [--configs mnist-ascii-bpe-cpu ...]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, data_dir, table  # noqa: E402

CONFIGS = ("mnist-ascii-bpe-cpu", "fashion-ascii-bpe-cpu")


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    args = ap.parse_args(argv)
    import numpy as np

    from mistral_vision.compare.ceiling import art_pixels, train_cnn
    from mistral_vision.config import load_config
    from mistral_vision.data.datasets import load_split

    rows, out = [], []
    for name in args.configs:
        cfg = load_config(ROOT / "configs" / f"{name}.yaml", [f"data.data_dir={data_dir()}", "data.offline=true"])
        d, a = cfg.data, cfg.ascii
        train = load_split(d.dataset, "train", d.data_dir, True, d.valid_size, d.split_seed)
        valid = load_split(d.dataset, "valid", d.data_dir, True, d.valid_size, d.split_seed)
        inputs = {f"its ASCII art ({a.width}x{a.height}, {len(a.ramp)} levels)":
                      (art_pixels(cfg, train.images), art_pixels(cfg, valid.images)),
                  "the original 28x28 images": (train.images.astype(np.float32) / 255.0,
                                                valid.images.astype(np.float32) / 255.0)}
        for what, (xt, xv) in inputs.items():
            acc, secs = train_cnn(xt, train.labels, xv, valid.labels, args.epochs)
            out.append({"config": name, "input": what, "valid_accuracy": acc, "seconds": secs})
            rows.append([name, what, f"{100 * acc:.2f}%", f"{secs / 60:.1f} min"])
    print(table(["config", "small CNN trained on", f"valid accuracy ({args.epochs} epochs)", "train time"], rows))
    return out


if __name__ == "__main__":
    main()
