"""The local training loop (accelerate), with atomic checkpoints and exact resume.

One loop serves CPU, one GPU and several GPUs/nodes: ``accelerate launch`` or ``torchrun``
start the processes and ``Accelerator`` shards each global batch across them, so no code
changes between a laptop and a cluster. Every ``save_every`` steps the trainable weights,
optimizer, scheduler, RNG state and elapsed time are written to a temporary folder and
renamed into ``checkpoints/step-N``; ``resume`` continues from the newest complete one with
the same data order (each epoch's order and augmentation are seeded by (seed, epoch)), so a
``kill -9`` loses at most one checkpoint interval. Not for: building models or data.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..config import RunConfig, dump_config, to_dict
from ..errors import UserError
from ..io import JsonlAppender, atomic_dir, read_jsonl_tolerant, write_json
from .batches import answer_loss, collate
from .source import training_source

# Settings that may change between a run and its resume without changing the result.
RESUME_FREE = {"name", "runs_dir", "train.save_every", "train.keep_checkpoints", "train.log_every",
               "train.threads", "train.eval_every", "train.eval_samples", "eval", "data.data_dir",
               "data.offline", "data.valid_limit", "data.test_limit"}


def _flat(d: dict, prefix="") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if key in RESUME_FREE:
            continue
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def check_resumable(cfg: RunConfig, run_dir: Path) -> None:
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        raise UserError(f"--resume: {run_dir} has no config.json; nothing to resume (drop --resume)")
    saved, now = _flat(json.loads(saved_path.read_text())), _flat(to_dict(cfg))
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            raise UserError(f"--resume: {run_dir} was trained with {key}={saved.get(key)!r} but the config now says "
                            f"{now.get(key)!r}; resume with the same settings or use a new run name")


def checkpoints(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    found = [p for p in root.glob("step-*") if (p / "state.json").is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def _lr_lambda(total: int, warmup: int, min_ratio: float):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return f


def _param_groups(model, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _trainable_state(model) -> dict:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k in names}


def _silent(*_args) -> None:
    pass


def train(cfg: RunConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train ``cfg`` into ``cfg.run_dir``; returns the training summary."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from ..models.ascii_tokenizer import run_tokenizer
    from ..models.backbones import build_model, get_backbone, save_model

    run_dir = cfg.run_dir
    model_dir = run_dir / "model"
    if resume:
        check_resumable(cfg, run_dir)
        if (model_dir / "backbone.json").is_file():
            return json.loads((run_dir / "train_summary.json").read_text())
    elif (run_dir / "config.json").exists() and (checkpoints(run_dir) or model_dir.exists()):
        raise UserError(f"{run_dir} already holds a training run; pass --resume to continue it or choose a new name")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tc = cfg.train
    acc = Accelerator(gradient_accumulation_steps=tc.grad_accum, mixed_precision=tc.mixed_precision,
                      cpu=not torch.cuda.is_available())
    if acc.is_main_process:
        dump_config(cfg, run_dir)
        write_json(run_dir / "environment.json", _environment(acc))
    set_seed(tc.seed)
    spec = get_backbone(cfg.model.backbone)
    tokenizer = run_tokenizer(cfg, spec, run_dir, log=print if (progress and acc.is_main_process) else _silent)
    model = build_model(spec, cfg.model, tokenizer)
    if tc.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()     # LoRA: frozen embeddings still need grads to flow
    source = training_source(cfg, tokenizer)
    world, bs = acc.num_processes, tc.batch_size
    # An epoch is the whole global batches that fit; the few images left over change every
    # epoch because each epoch reshuffles.
    micro_per_epoch = len(source) // (bs * world)
    if micro_per_epoch < tc.grad_accum:
        raise UserError(f"{len(source)} training samples are fewer than one batch "
                        f"({bs} x {world} processes x {tc.grad_accum} accumulation)")
    steps_per_epoch = micro_per_epoch // tc.grad_accum
    total = max(1, math.ceil(tc.epochs * steps_per_epoch))
    opt = torch.optim.AdamW(_param_groups(model, tc.weight_decay), lr=tc.lr, betas=tc.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, tc.warmup_steps, tc.min_lr_ratio))
    model, opt = acc.prepare(model, opt)

    step, elapsed_before = 0, 0.0
    metrics_path = run_dir / "metrics.jsonl"
    if resume and checkpoints(run_dir):
        ck = checkpoints(run_dir)[-1]
        state = torch.load(ck / "state.pt", map_location="cpu", weights_only=True)
        missing = set(_trainable_state(acc.unwrap_model(model))) - set(state["model"])
        if missing:
            raise UserError(f"--resume: checkpoint {ck} does not match this model (missing {sorted(missing)[0]})")
        acc.unwrap_model(model).load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        info = json.loads((ck / "state.json").read_text())
        step, elapsed_before = info["step"], info["elapsed"]
        if acc.is_main_process:   # drop log lines written after that checkpoint
            kept = [r for r in read_jsonl_tolerant(metrics_path) if r.get("step", 0) <= step]
            from ..io import write_jsonl
            write_jsonl(metrics_path, kept)
    elif acc.is_main_process and metrics_path.exists():
        metrics_path.unlink()

    monitor = _validation_monitor(cfg, tokenizer, source) if tc.eval_every else None
    log = JsonlAppender(metrics_path) if acc.is_main_process else None
    show = progress and acc.is_main_process
    tty = show and sys.stderr.isatty()
    bar = tqdm(total=total, initial=step, disable=not tty, mininterval=1.0,
               desc=f"train {cfg.name}", unit="step", dynamic_ncols=True)
    last_print = 0.0
    t_start = time.time()
    win_imgs = win_toks = 0
    win_loss, win_n, win_t = 0.0, 0, time.time()
    model.train()
    while step < total:
        epoch = step // steps_per_epoch
        examples = source.epoch_examples(epoch)
        order = np.random.default_rng([tc.seed, epoch]).permutation(len(examples))
        first_micro = (step % steps_per_epoch) * tc.grad_accum
        for micro in range(first_micro, steps_per_epoch * tc.grad_accum):
            g = order[micro * bs * world:(micro + 1) * bs * world]
            mine = g[acc.process_index * bs:(acc.process_index + 1) * bs]
            batch = collate([examples[i] for i in mine], tokenizer.pad_token_id)
            batch = {k: (v.to(acc.device) if hasattr(v, "to") else v) for k, v in batch.items()}
            with acc.accumulate(model):
                loss, _ = answer_loss(model, batch, tc.loss_reduction)
                acc.backward(loss)
                if acc.sync_gradients and tc.grad_clip:
                    acc.clip_grad_norm_(model.parameters(), tc.grad_clip)
                opt.step()
                if acc.sync_gradients:
                    sched.step()
                opt.zero_grad(set_to_none=True)
            win_imgs += len(mine) * world
            win_toks += int(batch["attention_mask"].sum()) * world
            win_loss += float(loss.detach())
            win_n += 1
            if not acc.sync_gradients:
                continue
            step += 1
            bar.update(1)
            if step % tc.log_every == 0 or step == total:
                dt = max(time.time() - win_t, 1e-9)
                rec = {"step": step, "epoch": round(step / steps_per_epoch, 4), "loss": win_loss / win_n,
                       "lr": sched.get_last_lr()[0], "images_per_s": win_imgs / dt, "tokens_per_s": win_toks / dt,
                       "elapsed_s": elapsed_before + time.time() - t_start}
                bar.set_postfix(loss=f"{rec['loss']:.4f}", img_s=f"{rec['images_per_s']:.0f}",
                                tok_s=f"{rec['tokens_per_s']:.0f}")
                if log:
                    log.write([rec])
                if show and not tty and (time.time() - last_print > 60 or step == total):
                    last_print = time.time()   # plain lines for logs: one a minute
                    print(f"step {step}/{total} epoch {rec['epoch']:.2f} loss {rec['loss']:.4f} "
                          f"{rec['images_per_s']:.0f} img/s {rec['tokens_per_s']:.0f} tok/s", file=sys.stderr, flush=True)
                win_imgs = win_toks = win_n = 0
                win_loss, win_t = 0.0, time.time()
            if monitor and (step % tc.eval_every == 0 or step == total):
                t0 = time.time()
                accuracy = monitor(acc.unwrap_model(model))
                model.train()
                if log:
                    log.write([{"step": step, "epoch": round(step / steps_per_epoch, 4), "valid_accuracy": accuracy,
                                "valid_n": monitor.n, "elapsed_s": elapsed_before + time.time() - t_start}])
                win_t += time.time() - t0   # keep validation time out of the throughput figures
            if step % tc.save_every == 0 and step < total:
                _save_checkpoint(acc, model, opt, sched, run_dir, step, elapsed_before + time.time() - t_start,
                                 tc.keep_checkpoints)
            if step >= total:
                break
    bar.close()
    if log:
        log.close()
    wall = elapsed_before + time.time() - t_start
    acc.wait_for_everyone()
    summary = {"steps": total, "epochs": round(total / steps_per_epoch, 4), "train_samples": len(source),
               "wall_s": round(wall, 1), "processes": world,
               "params": sum(p.numel() for p in acc.unwrap_model(model).parameters()),
               "trainable_params": sum(p.numel() for p in acc.unwrap_model(model).parameters() if p.requires_grad)}
    if acc.is_main_process:
        save_model(acc.unwrap_model(model), tokenizer, model_dir, spec)
        write_json(run_dir / "train_summary.json", summary)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return summary


def _environment(acc) -> dict:
    """Versions and hardware, so a number in a report can be traced to what produced it."""
    import platform

    import accelerate
    import peft
    import torch
    import transformers

    return {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "accelerate": accelerate.__version__, "device": str(acc.device), "processes": acc.num_processes,
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}


def _save_checkpoint(acc, model, opt, sched, run_dir: Path, step: int, elapsed: float, keep: int) -> None:
    import torch

    acc.wait_for_everyone()
    if not acc.is_main_process:
        return
    with atomic_dir(run_dir / "checkpoints" / f"step-{step:07d}") as tmp:
        torch.save({"model": _trainable_state(acc.unwrap_model(model)), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "state.pt")
        write_json(tmp / "state.json", {"step": step, "elapsed": elapsed})
    for old in checkpoints(run_dir)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)


class _Monitor:
    def __init__(self, scorer_factory, prompts, labels, batch_size):
        self.scorer_factory, self.prompts, self.labels, self.batch_size = scorer_factory, prompts, labels, batch_size
        self.n = len(labels)

    def __call__(self, model) -> float:
        model.eval()
        scorer = self.scorer_factory(model)
        correct = 0
        for i in range(0, self.n, self.batch_size):
            s = scorer.score(self.prompts[i:i + self.batch_size])
            correct += int((s.argmax(-1).numpy() == self.labels[i:i + self.batch_size]).sum())
        return correct / self.n


def _validation_monitor(cfg: RunConfig, tokenizer, source):
    """Accuracy on the first ``eval_samples`` validation images (for the training curve)."""
    task = getattr(source, "task", None)
    if task is None:
        return None
    from ..data.datasets import load_split
    from ..infer.scorer import LabelScorer

    d = cfg.data
    valid = load_split(d.dataset, "valid", d.data_dir, d.offline, d.valid_size, d.split_seed).subset(cfg.train.eval_samples)
    prompts = task.encode_prompts(valid.images)
    return _Monitor(lambda m: LabelScorer(m, task.label_ids, tokenizer.pad_token_id, tokenizer.eos_token_id,
                                            cfg.eval.score_eos), prompts, valid.labels,
                    cfg.eval.batch_size)
