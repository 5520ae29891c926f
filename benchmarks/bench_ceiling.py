"""How much of the answer survives the ASCII rendering? A small CNN as a reference reader.

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
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, data_dir, table  # noqa: E402

CONFIGS = ("mnist-ascii-bpe-cpu", "fashion-ascii-bpe-cpu")


def art_pixels(cfg, images):
    """(N, H, W) float32 in [0, 1]: the config's ASCII art of ``images`` back as pixels."""
    import numpy as np

    from mistral_vision.ascii.render import ascii_to_image, render_ascii

    a = cfg.ascii
    arts = render_ascii(images, a.width, a.height, a.ramp, a.invert, a.crop)
    return np.stack([ascii_to_image(t, a.ramp, a.width) for t in arts]).astype(np.float32) / 255.0


def train_cnn(x_train, y_train, x_valid, y_valid, epochs: int, seed: int = 0) -> tuple[float, float]:
    """-> (valid accuracy, seconds) of a small CNN trained with Adam and a cosine schedule."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    h, w = x_train.shape[1:]
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
                        nn.Linear(64 * (h // 2) * (w // 2), 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))
    xt, yt = torch.from_numpy(x_train).unsqueeze(1), torch.from_numpy(y_train).long()
    xv, yv = torch.from_numpy(x_valid).unsqueeze(1), torch.from_numpy(y_valid).long()
    steps = epochs * (len(xt) // 128)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt) - 127, 128):
            idx = perm[i:i + 128]
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(xv[i:i + 1000]).argmax(-1) for i in range(0, len(xv), 1000)])
    return float((pred == yv).float().mean()), time.perf_counter() - t0


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS))
    args = ap.parse_args(argv)
    import numpy as np

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
