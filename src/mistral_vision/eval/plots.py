"""Report figures (matplotlib, Agg backend, written atomically): confusion matrix,
training curves, and a gallery of misclassified images beside their ASCII renderings.
Not for: computing metrics.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_path


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_confusion(conf, label_names, path: Path, title: str) -> None:
    plt = _figure()
    conf = np.asarray(conf)
    k = len(label_names)
    rowsum = conf.sum(1, keepdims=True).clip(min=1)
    frac = conf / rowsum
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * k, 0.6 + 0.55 * k))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if conf[i, j]:
                ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), label_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), label_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    _save(fig, path)


def plot_curves(metrics: list[dict], path: Path, title: str) -> bool:
    """Training loss (and validation accuracy when logged) against optimizer steps."""
    loss = [(r["step"], r["loss"]) for r in metrics if "loss" in r]
    val = [(r["step"], r["valid_accuracy"]) for r in metrics if "valid_accuracy" in r]
    if not loss:
        return False
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(*zip(*loss), color="tab:blue", label="train loss (answer tokens only; train.loss_reduction)")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss", color="tab:blue")
    if val:
        ax2 = ax.twinx()
        ax2.plot(*zip(*val), "o-", color="tab:orange", ms=3, label="valid accuracy (monitor subset)")
        ax2.set_ylabel("valid accuracy", color="tab:orange")
        lo = min(v for _, v in val)
        ax2.set_ylim(max(0.0, lo - 0.02), 1.0)
    starts = {}                                   # first logged step of each training stage
    for r in metrics:
        if "loss" in r and r.get("stage") is not None:
            starts.setdefault(r["stage"], r["step"])
    if len(starts) > 1:
        for name, step in starts.items():
            ax.axvline(step, color="grey", lw=0.6, ls=":")
            ax.text(step, 1.0, f" {name}", transform=ax.get_xaxis_transform(), fontsize=7, color="grey",
                    va="top", ha="left")
    ax.set_title(title, fontsize=10)
    fig.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8, frameon=False)
    _save(fig, path)
    return True


def art_image(art: str, cell: int = 24) -> np.ndarray:
    """The ASCII art as an (H, W) uint8 picture, each character centred in a square cell.

    Characters are about twice as tall as wide, so text drawn as text shows a 10 x 10 rendering
    as a narrow strip; in square cells it has the image's own proportions, and at ``cell``
    pixels per character it stays readable however many characters there are."""
    from matplotlib import font_manager
    from PIL import Image, ImageDraw, ImageFont

    lines = art.split("\n")
    cols = max(1, max(len(line) for line in lines))
    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans Mono"), int(cell * 0.8))
    pic = Image.new("L", (cols * cell, len(lines) * cell), 255)
    draw = ImageDraw.Draw(pic)
    for y, line in enumerate(lines):
        for x, ch in enumerate(line):
            if not ch.isspace():
                draw.text(((x + 0.5) * cell, (y + 0.5) * cell), ch, fill=0, font=font, anchor="mm")
    return np.asarray(pic)


def _same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def plot_gallery(items: list[dict], path: Path, title: str) -> bool:
    """items: {"image": (H, W) uint8, "seen": (h, w) uint8 what the model saw, "seen_title": str,
    "art": str or None (the text the model read, ASCII route), "caption": str}.

    Each item gets the original, what the model saw (left out where it is the original itself,
    as for a tower that takes the image unchanged) and the ASCII text it read, in square cells."""
    if not items:
        return False
    plt = _figure()
    arts = any(it.get("art") for it in items)
    seen_differs = any(not _same_picture(it["image"], it["seen"]) for it in items)
    per = 1 + seen_differs + arts
    cols = min(4, len(items))
    rows = (len(items) + cols - 1) // cols
    cap_lines = max(it["caption"].count("\n") + 1 for it in items)       # long captions (questions) get room
    fig, axes = plt.subplots(rows, cols * per, figsize=(cols * 2.0 * per, rows * (2.3 + 0.14 * cap_lines)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for n, it in enumerate(items):
        r, c = divmod(n, cols)
        panels = iter(axes[r, per * c: per * (c + 1)])
        a_img = next(panels)
        a_img.imshow(it["image"], cmap="gray", vmin=0, vmax=255)
        a_img.set_title("original" if seen_differs else f"original = {it.get('seen_title', 'seen')}", fontsize=7)
        if seen_differs:
            seen = it["seen"]
            a_seen = next(panels)
            a_seen.imshow(seen, cmap="gray" if seen.ndim == 2 else None, vmin=0, vmax=255)
            a_seen.set_title(it.get("seen_title", "seen"), fontsize=7)
        if arts and it.get("art"):
            a_art = next(panels)
            lines = it["art"].split("\n")
            a_art.imshow(art_image(it["art"]), cmap="gray", vmin=0, vmax=255)
            a_art.set_title(f"text read ({max(map(len, lines))}x{len(lines)} chars)", fontsize=7)
        a_img.text(0, -0.08, it["caption"], fontsize=7, transform=a_img.transAxes, va="top")
    height = fig.get_size_inches()[1]
    fig.subplots_adjust(top=1 - 0.45 / height, hspace=0.25 + 0.06 * cap_lines)   # title close, captions clear of the next row
    seen_title = items[0].get("seen_title", "seen")
    names = ["original"] + ([seen_title] if seen_differs else []) + (["text read"] if arts else [])
    fig.suptitle(f"{title} ({' | '.join(names) if seen_differs else f'original = {seen_title}'})", fontsize=10)
    _save(fig, path)
    return True


def plot_per_type(per_type: dict, path: Path, title: str) -> None:
    """Accuracy per question type with its 95% interval, and each type's number of questions."""
    plt = _figure()
    names = list(per_type)
    acc = [100 * per_type[t]["accuracy"] for t in names]
    lo = [max(0.0, 100 * (per_type[t]["accuracy"] - per_type[t]["ci95"][0])) for t in names]   # rounding at 0 / 100%
    hi = [max(0.0, 100 * (per_type[t]["ci95"][1] - per_type[t]["accuracy"])) for t in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names) + 1), 3.2))
    ax.bar(range(len(names)), acc, yerr=[lo, hi], color="#4c72b0", alpha=0.75, capsize=3)
    base = [100 * per_type[t].get("majority", float("nan")) for t in names]
    ax.scatter(range(len(names)), base, marker="_", s=400, color="#dd8452", zorder=3,
               label="majority answer (always the commonest truth)")
    ax.legend(fontsize=7, loc="lower right", framealpha=0.9)
    for i, t in enumerate(names):
        ax.text(i, 1, f"n={per_type[t]['n']}", ha="center", fontsize=7, color="white")
    ax.set_xticks(range(len(names)), names, fontsize=8, rotation=20)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def plot_seed_accuracies(rows: list[dict], path: Path) -> None:
    """compare: per dataset, each seed's validation accuracy (dots) and their mean +- std (bar) per config
    and backbone, on that dataset's own axis (datasets differ by tens of points, backbones by tenths)."""
    if not rows:
        return
    plt = _figure()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    panels = [[r for r in rows if r["dataset"] == d] for d in datasets]
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.0, 1.3 * len(rows) + 1), 3.4), squeeze=False)
    for ax, dataset, group in zip(axes[0], datasets, panels):
        for i, r in enumerate(group):
            color = "#4c72b0" if r["route"] == "llava" else "#dd8452"
            ax.errorbar(i, 100 * r["accuracy_mean"], yerr=100 * r["accuracy_std"], fmt="_", markersize=22,
                        capsize=4, color=color, lw=1.5)
            ax.scatter([i] * len(r["accuracy"]), [100 * a for a in r["accuracy"]], color="k", s=10, zorder=3)
        ax.set_xticks(range(len(group)), [f"{r['config']}\n{r['backbone']}" for r in group], fontsize=7)
        ax.set_xlim(-0.6, len(group) - 0.4)
        ax.set_title(dataset, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("valid accuracy (%)")
    fig.suptitle("each seed (dots), mean +- std (bars; orange ASCII, blue LLaVA); each panel its own scale",
                 fontsize=9)
    _save(fig, path)


def plot_budget_curves(rows: list[dict], baseline: str, full: str, path: Path, majority: dict | None = None) -> None:
    """compare's selection study: per config and backbone, validation accuracy against the examples kept (log
    scale), one line (the mean over seeds) per method; the baseline's band spans its seeds' min..max and the
    whole pool (``full``, the reference run) is a dashed line and a point at the pool's size; ``majority``
    (config -> accuracy of always each type's most frequent answer) a red dotted line."""
    panels = list(dict.fromkeys((r["config"], r["backbone"]) for r in rows))
    if not panels:
        return
    plt = _figure()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False, sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = list(dict.fromkeys(r["method"] for r in rows if r["method"] != full))
    for ax, panel in zip(axes[0], panels):
        group = [r for r in rows if (r["config"], r["backbone"]) == panel and r["count"]]
        for i, method in enumerate(methods):
            pts = sorted((r["count"], r) for r in group if r["method"] == method)
            if not pts:
                continue
            xs = [x for x, _ in pts]
            color = "k" if method == baseline else colors[i % len(colors)]
            seeds = max(len(r["accuracy"]) for _, r in pts)
            label = f"{method} (mean; bar and band: min..max of {seeds} seeds)" if method == baseline else method
            ax.plot(xs, [100 * r["accuracy_mean"] for _, r in pts], "o-", color=color, ms=3, lw=1.3, label=label,
                    zorder=3 if method == baseline else 2)
            if method == baseline:      # the band needs two budgets; the bar shows the spread at one
                lo, hi = [100 * min(r["accuracy"]) for _, r in pts], [100 * max(r["accuracy"]) for _, r in pts]
                ax.fill_between(xs, lo, hi, color=color, alpha=0.15, lw=0)
                ax.vlines(xs, lo, hi, color=color, lw=1, alpha=0.6)
        for r in (r for r in group if r["method"] == full):
            ax.axhline(100 * r["accuracy_mean"], color="grey", ls="--", lw=1)
            ax.plot([r["count"]], [100 * r["accuracy_mean"]], "s", color="grey", label=f"whole pool ({r['count']:,})")
        if (majority or {}).get(panel[0]) is not None:
            ax.axhline(100 * majority[panel[0]], color="tab:red", ls=":", lw=1.2, label="majority answer")
        ax.set_xscale("log")
        ticks = sorted({r["count"] for r in group})
        ax.set_xticks(ticks, [f"{t:,}" for t in ticks], fontsize=7, rotation=45)
        ax.minorticks_off()
        ax.set_xlabel("training examples kept (log scale)")
        ax.set_title(f"{panel[0]} / {panel[1]}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("valid accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    _save(fig, path)
