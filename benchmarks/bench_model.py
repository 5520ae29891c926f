"""Training and inference throughput of the tiny presets on this machine (real data), both routes.

For each shipped CPU config shape and each family (mistral-tiny, llama-tiny): training
images/s and tokens/s (forward + backward + AdamW step, answer-only loss, every part trained)
and label-scored inference images/s (single view), on real MNIST / Fashion-MNIST images, in one
process; tokens per prompt counts the ASCII art's tokens or LLaVA's image tokens. Configs with
an ASCII tokenizer learn it first, as their run would (not timed).

    python benchmarks/bench_model.py [--train-steps 20] [--infer-images 2048] [--only llava]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, data_dir, table  # noqa: E402


# The shipped CPU configs, and the Fashion-MNIST one with class names as single tokens
# (one forward pass per image instead of a second pass over each name's tokens).
SHAPES = [("mnist-ascii-cpu", []), ("fashion-ascii-cpu", []), ("mnist-ascii-bpe-cpu", []),
          ("fashion-ascii-bpe-cpu", []), ("fashion-ascii-bpe-cpu", ["tokenizer.label_tokens=true"]),
          ("mnist-llava-cpu", []), ("fashion-llava-cpu", []), ("mnist-llava-cpu", ["vision.patch_size=4"])]


def measure(cfg, train_steps: int, infer_images: int) -> dict:
    import tempfile
    from pathlib import Path

    import torch

    from mistral_vision.data.datasets import load_split
    from mistral_vision.infer.scorer import LabelScorer
    from mistral_vision.models.build import build_run_model
    from mistral_vision.tasks import make_task
    from mistral_vision.train.batches import answer_loss

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        model, processor = build_run_model(cfg, Path(tmp), log=lambda *_: None)
    data = load_split(cfg.data.dataset, "valid", data_dir(), True)
    task = make_task(cfg, processor, data.label_names)
    bs = cfg.train.batch_size
    n = max(infer_images, bs * 3)
    prompts = task.encode(data.images[:n])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    exs = task.examples(data.images[:n], data.labels[:n])

    def step(i):
        start = (i * bs) % (len(exs) - bs)
        batch = exs.batch(range(start, start + bs), task.pad_id)
        loss, _ = answer_loss(model, batch, cfg.train.loss_reduction)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return int(batch["attention_mask"].sum())

    step(0)
    t, toks = time.perf_counter(), 0
    for i in range(train_steps):
        toks += step(i + 1)
    dt = time.perf_counter() - t
    train_ips, train_tps = train_steps * bs / dt, toks / dt
    model.eval()
    scorer = LabelScorer(model, task.label_ids, task.pad_id, task.eos_id, cfg.eval.score_eos)
    ebs = cfg.eval.batch_size
    scorer.score(prompts.ids[:ebs], prompts.take(range(ebs)).extras)
    t = time.perf_counter()
    for i in range(0, infer_images, ebs):
        part = prompts.take(range(i, min(i + ebs, len(prompts))))
        scorer.score(part.ids, part.extras)
    infer_ips = infer_images / (time.perf_counter() - t)
    image_id = getattr(model.config, "image_token_id", None)
    return {"image_tokens": prompts.ids[0].count(image_id) if image_id is not None else 0,"params": sum(p.numel() for p in model.parameters()), "prompt_tokens": len(prompts.ids[0]),
            "train_img_s": train_ips, "train_tok_s": train_tps, "infer_img_s": infer_ips}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--infer-images", type=int, default=2048)
    ap.add_argument("--only", help="only the config shapes whose name contains this, e.g. llava")
    args = ap.parse_args(argv)
    import torch

    from mistral_vision.config import load_config

    rows, out = [], []
    for name, extra in SHAPES:
        if args.only and args.only not in name:
            continue
        for bb in ("mistral-tiny", "llama-tiny"):
            cfg = load_config(ROOT / "configs" / f"{name}.yaml", [f"model.backbone={bb}", f"data.data_dir={data_dir()}",
                                                                  "data.offline=true", *extra])
            r = measure(cfg, args.train_steps, args.infer_images)
            label = " ".join([name, *extra])
            out.append({"config": label, "backbone": bb, **r})
            rows.append([label, bb, f"{r['params'] / 1e3:.0f}k", f"{r['prompt_tokens']} ({r['image_tokens']} image)"
                         if r["image_tokens"] else r["prompt_tokens"], f"{r['train_img_s']:.0f}",
                         f"{r['train_tok_s']:,.0f}", f"{r['infer_img_s']:,.0f}"])
    print(table(["config shape", "backbone", "params", "tokens/prompt", "train img/s", "train tok/s",
                 "infer img/s (label-scored)"], rows))
    print(f"\n{torch.get_num_threads()} torch threads, torch {torch.__version__}; inference target >= 1,000 img/s")
    return out


if __name__ == "__main__":
    main()
