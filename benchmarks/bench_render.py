"""ASCII conversion speed: the vectorized renderer vs a straightforward per-pixel Python loop.

Both run in this process on one core (BLAS threads pinned to 1) over real MNIST training
images at 28x28. The loop is timed on --loop-images images (default 6,000, a tenth of the
set; pass 60000 for all) and compared per image.

    python benchmarks/bench_render.py [--loop-images N]
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from common import data_dir, table  # noqa: E402

RAMP = " .:-=+*#%@"


def per_pixel_loop(images, width: int, height: int, ramp: str = RAMP) -> list[str]:
    """The straightforward version: every output character computed in Python."""
    out = []
    n_levels = len(ramp)
    for img in images:
        h, w = img.shape
        fy, fx = h / height, w / width
        lines = []
        for r in range(height):
            chars = []
            for c in range(width):
                total, count = 0, 0
                for y in range(int(r * fy), int((r + 1) * fy)):
                    for x in range(int(c * fx), int((c + 1) * fx)):
                        total += int(img[y, x])
                        count += 1
                v = total / count
                chars.append(ramp[min(int(v * n_levels / 256), n_levels - 1)])
            lines.append("".join(chars))
        out.append("\n".join(lines))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop-images", type=int, default=6000)
    args = ap.parse_args(argv)
    from pathlib import Path

    from mistral_vision import render_ascii
    from mistral_vision.data.idx import read_images

    images = read_images(Path(data_dir()) / "mnist" / "train-images-idx3-ubyte.gz")
    assert len(images) == 60000
    times = []
    for _ in range(3):                  # the first pass pays for fresh memory pages; report the best
        t = time.perf_counter()
        fast = render_ascii(images, 28, 28)
        times.append(time.perf_counter() - t)
    t_fast = min(times)
    sub = images[:args.loop_images]
    t = time.perf_counter()
    slow = per_pixel_loop(sub, 28, 28)
    t_slow = time.perf_counter() - t
    assert slow == fast[:len(sub)], "the two renderers disagree"
    fast_rate, slow_rate = len(images) / t_fast, len(sub) / t_slow
    rows = [["vectorized render_ascii", f"{len(images):,}", f"{t_fast:.2f}", f"{fast_rate:,.0f}", "1.0"],
            ["per-pixel Python loop", f"{len(sub):,}", f"{t_slow:.2f}", f"{slow_rate:,.0f}",
             f"{slow_rate / fast_rate:.4f}"]]
    print(table(["MNIST train -> 28x28 ASCII, 1 core", "images", "seconds", "images/s", "rate vs vectorized"], rows))
    ratio = fast_rate / slow_rate
    print(f"\nspeed-up: {ratio:,.0f}x (target >= 200x); 60,000 images in {t_fast:.2f} s (best of 3; the "
          f"three runs took {', '.join(f'{x:.2f}' for x in times)} s) vs "
          f"{len(images) / slow_rate / 60:.1f} min extrapolated for the loop")
    return {"speedup": ratio, "fast_s": t_fast, "loop_images_per_s": slow_rate}


if __name__ == "__main__":
    main()
