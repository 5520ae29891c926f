"""What the ASCII rendering costs: one small CNN trained on the art and on the raw pixels.

A small convolutional network (2 conv layers + 1 hidden layer; not a language model) is trained
on exactly the pictures the ASCII route's LLM reads - the config's art turned back into pixels
with ``ascii_to_image`` (same crop, grid and ramp) - and on the original 28x28 images, and both
are scored on the same fixed validation split. A CNN is a strong reader of small images, so its
accuracy on the art is a practical (not a proven) ceiling for any reader of that art in a short
budget, and the gap to raw pixels is what the rendering throws away. Not for: the LLMs.
"""
from __future__ import annotations

import time


def art_pixels(cfg, images):
    """(N, H, W) float32 in [0, 1]: the config's ASCII art of ``images`` back as pixels."""
    import numpy as np

    from ..ascii.render import ascii_to_image, render_ascii

    a = cfg.ascii
    arts = render_ascii(images, a.width, a.height, a.ramp, a.invert, a.crop)
    return np.stack([ascii_to_image(t, a.ramp, a.width) for t in arts]).astype(np.float32) / 255.0


def train_cnn(x_train, y_train, x_valid, y_valid, epochs: int, seed: int = 0, classes: int = 10) -> tuple[float, float]:
    """-> (valid accuracy, seconds) of a small CNN trained with Adam and a cosine schedule."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    h, w = x_train.shape[1:]
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
                        nn.Linear(64 * (h // 2) * (w // 2), 128), nn.ReLU(), nn.Dropout(0.25),
                        nn.Linear(128, classes))
    xt, yt = torch.from_numpy(x_train).unsqueeze(1), torch.from_numpy(y_train).long()
    xv, yv = torch.from_numpy(x_valid).unsqueeze(1), torch.from_numpy(y_valid).long()
    batch = min(128, len(xt))
    steps = max(1, epochs * (len(xt) // batch))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt) - batch + 1, batch):
            idx = perm[i:i + batch]
            loss = nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(xv[i:i + 1000]).argmax(-1) for i in range(0, len(xv), 1000)])
    return float((pred == yv).float().mean()), time.perf_counter() - t0


def rendering_cost(cfg, epochs: int = 8) -> dict:
    """The same CNN on ``cfg``'s art and on raw pixels: validation accuracy of each, and seconds."""
    import numpy as np

    from ..data.datasets import load_split

    d = cfg.data
    train = load_split(d.dataset, "train", d.data_dir, d.offline, d.valid_size, d.split_seed).subset(d.train_limit)
    valid = load_split(d.dataset, "valid", d.data_dir, d.offline, d.valid_size, d.split_seed).subset(d.valid_limit)
    classes = len(train.label_names)
    art, t_art = train_cnn(art_pixels(cfg, train.images), train.labels, art_pixels(cfg, valid.images), valid.labels,
                           epochs, classes=classes)
    raw, t_raw = train_cnn(train.images.astype(np.float32) / 255.0, train.labels,
                           valid.images.astype(np.float32) / 255.0, valid.labels, epochs, classes=classes)
    a = cfg.ascii
    return {"dataset": d.dataset, "art": f"{a.width}x{a.height}, crop {a.crop}, {len(a.ramp)} levels", "epochs": epochs,
            "cnn_on_art": art, "cnn_on_pixels": raw, "cost": raw - art, "seconds": round(t_art + t_raw, 1)}
