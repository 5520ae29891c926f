"""The local training loop (accelerate): a run is a list of stages, each resumable.

One loop serves CPU, one GPU and several GPUs/nodes: ``accelerate launch`` or ``torchrun``
start the processes and ``Accelerator`` shards each global batch across them, so no code
changes between a laptop and a cluster. Each stage (``stages.py``) freezes all but its
parts, fits with AdamW (one learning rate per part) and a warmup + cosine schedule of its
own, checkpoints every ``save_every`` steps, and leaves its result in ``stages/``
(``checkpoints.py``). ``resume`` reloads finished stages and continues the current one from
its newest checkpoint with the same data order (each epoch's order and augmentation are
seeded by (seed, epoch)), so a ``kill -9`` in any stage loses at most one checkpoint interval.
The ASCII route's single stage is the one-stage case. Not for: building models or data, or
scoring (the validation monitor is handed in by the caller, ``pipeline.py``).
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..config import RunConfig, dump_config, inference_template, resolve_stages
from ..errors import UserError
from ..io import read_jsonl_tolerant, write_json, write_jsonl
from .batches import answer_loss
from .checkpoints import (check_resumable, check_same_family, checkpoints, has_training_state, is_done,
                          load_checkpoint, load_stage_result, save_checkpoint, save_stage_result, stage_key)
from .log import Curve, LogLines, Window, check_tracker, finish_trackers, tracker_kwargs
from .precision import (accelerator, autocast_precision, enable_activation_checkpointing, keep_trainable_fp32,
                        restore_dtypes)
from .source import training_source
from .stages import freeze_for_stage


def lr_schedule(opt, total: int, warmup: int, min_ratio: float):
    """Linear warmup from 0, then a cosine to ``lr * min_ratio``: transformers' scheduler, as HF Trainer's
    ``cosine_with_min_lr`` and LLaVA use it (each parameter group keeps its own peak lr). Its state
    (the step count) goes into checkpoints, so a resumed stage continues the same sequence."""
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    return get_cosine_with_min_lr_schedule_with_warmup(opt, warmup, total, min_lr_rate=min_ratio)


def _silent(*_args) -> None:
    pass


def train(cfg: RunConfig, resume: bool = False, progress: bool = True, monitor_factory=None) -> dict:
    """Train ``cfg`` into ``cfg.run_dir``, stage by stage; returns the training summary.

    ``monitor_factory(cfg, task)`` -> a callable ``monitor(model) -> valid accuracy`` (with ``.n``),
    run every ``train.eval_every`` steps for the training curve.
    """
    import torch
    from accelerate.utils import set_seed

    from ..data.datasets import load_split
    from ..data.run_data import is_question_set, label_names_for, load_questions
    from ..data.selection import select_images, selection_file
    from ..models.build import build_run_model, is_saved, save_run_model, text_tokenizer
    from ..data.textdata import is_text_data
    from ..models.backbones import check_checkpoint
    from ..tasks import make_task

    run_dir = cfg.run_dir
    model_dir = run_dir / "model"
    if resume and not has_training_state(run_dir):
        resume = False                             # nothing was trained: start afresh with this config
    if resume:
        check_resumable(cfg, run_dir)
        if is_saved(model_dir):
            return json.loads((run_dir / "train_summary.json").read_text())
    elif has_training_state(run_dir):
        raise UserError(f"{run_dir} already holds a training run; pass --resume to continue it or choose a new name")
    stages = resolve_stages(cfg)
    check_checkpoint(cfg)                        # again: model.pretrain may have built it since validation
    for i, stage in enumerate(stages):           # refused before anything is written or built
        if stage.init_from and not is_done(Path(stage.init_from)):
            raise UserError(f"stages[{i}].init_from: no finished stage at {stage.init_from} (done.json and state.pt "
                            "missing); train that stage first or point init_from at a finished one")
        if stage.init_from:
            check_same_family(cfg, Path(stage.init_from), f"stages[{i}].init_from")
    selection = selection_file(cfg.data, run_dir)      # data.select: the subset chosen before training (or one line)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    tc = cfg.train
    cuda = torch.cuda.is_available()
    check_tracker(tc.report_to)
    acc = accelerator(autocast_precision(cfg, cuda), gradient_accumulation_steps=tc.grad_accum, cpu=not cuda,
                      **tracker_kwargs(cfg))
    main = acc.is_main_process
    log = print if (progress and main) else _silent
    if main:
        dump_config(cfg, run_dir)
        write_json(run_dir / "environment.json", _environment(acc))
    set_seed(tc.seed)
    model, processor = build_run_model(cfg, run_dir, log)
    half = keep_trainable_fp32(model, stages, log)          # before any stage or checkpoint is loaded
    if tc.gradient_checkpointing:
        enable_activation_checkpointing(model)
    d = cfg.data
    if tc.train_file or is_text_data(d):          # text-only runs: every stage reads its own text (source.py)
        data = None
    elif is_question_set(d):
        data = load_questions(d, "train", conversations=True, selection=selection)
    else:
        data = load_split(d.dataset, "train", d.data_dir, d.offline, d.valid_size, d.split_seed)
        data = (select_images(data, d, selection) if selection else data).subset(d.train_limit)
    names = label_names_for(d)
    task = make_task(cfg, processor, names, inference_template(cfg))   # as the trained run is prompted (monitor)
    sources = {}

    def source_of(stage):          # stages that read the same data with the same chat template share one source
        key = (stage.kind, stage.data, stage.template)
        if key not in sources:
            sources[key] = training_source(cfg, make_task(cfg, processor, names, stage.template), data, stage)
        return sources[key]

    vocab = text_tokenizer(processor).get_vocab()     # kept with each stage result: init_from checks it
    source = source_of(stages[0])
    monitor = monitor_factory(cfg, task) if (monitor_factory and tc.eval_every and source.task is not None) else None
    metrics_path = run_dir / "metrics.jsonl"
    if main and not resume and metrics_path.exists():
        metrics_path.unlink()

    step_base, wall, totals = 0, 0.0, []
    for i, stage in enumerate(stages):
        key = stage_key(i, stage)
        result_dir = run_dir / "stages" / key
        if is_done(result_dir):                    # finished before a resume: take its weights, go on
            done = load_stage_result(model, result_dir, expect=stage, who=f"stage {key}")
            step_base += done["steps"]
            wall += done["wall_s"]
            totals.append(done)
            log(f"      stage {key}: done earlier ({done['steps']} steps), weights reloaded")
            continue
        if stage.init_from:
            load_stage_result(model, Path(stage.init_from), who=f"stages[{i}].init_from", vocab=vocab)
            log(f"      stage {key}: starting from {stage.init_from}")
        info = _fit_stage(cfg, acc, model, task, source_of(stage), stage, i, step_base, resume, monitor, progress, log)
        acc.wait_for_everyone()
        if main:
            save_stage_result(model, stage, result_dir, info, vocab)
        step_base += info["steps"]
        wall += info["wall_s"]
        totals.append(info)
    acc.wait_for_everyone()
    samples = max(len(s) for s in sources.values())
    summary = {"steps": step_base, "epochs": round(sum(t["epochs"] for t in totals), 4), "train_samples": samples,
               "wall_s": round(wall, 1), "processes": acc.num_processes,
               "params": sum(p.numel() for p in model.parameters()),
               "trainable_params": sum(t["trainable_params"] for t in totals[-1:]),
               "stages": [{k: t[k] for k in ("name", "steps", "epochs", "wall_s", "trainable", "trainable_params")}
                          for t in totals],
               "tokens_per_sample": next((t.get("tokens_per_sample") for t in totals if t.get("tokens_per_sample")), None),
               "peak_rss_mb": _peak_rss_mb()}
    finish_trackers(acc)
    if main:
        from ..models.chat_templates import with_chat_template

        restore_dtypes(model, half)                          # saved in the dtype the config asked for
        save_run_model(model, with_chat_template(processor, inference_template(cfg)), model_dir, cfg)   # what it is prompted with
        write_json(run_dir / "train_summary.json", summary)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return summary


def _fit_stage(cfg, acc, model, task, source, stage, index, step_base, resume, monitor, progress, log) -> dict:
    """Fit one stage (resuming from its newest checkpoint) -> what it did."""
    import torch
    from tqdm.auto import tqdm

    tc = cfg.train
    run_dir = cfg.run_dir
    key = stage_key(index, stage)
    ck_dir = run_dir / "checkpoints" / key
    raw = acc.unwrap_model(model)       # each stage wraps the bare model anew: DDP must see the new requires_grad
    groups = freeze_for_stage(raw, stage, tc.weight_decay, log=log)
    world, bs = acc.num_processes, stage.batch_size
    # An epoch is the whole global batches that fit; the few images left over change every
    # epoch because each epoch reshuffles.
    micro_per_epoch = len(source) // (bs * world)
    if micro_per_epoch < tc.grad_accum:
        # A stage whose data is smaller than one batch (a small data.select subset that kept few captions)
        # trains on batches of what there is rather than stopping the run; below one sample per process
        # and accumulation step there is nothing to train on.
        small = len(source) // (world * tc.grad_accum)
        if small < 1:
            raise UserError(f"stage {stage.name}: {len(source)} training samples are fewer than one per process "
                            f"and accumulation step ({world} x {tc.grad_accum})")
        log(f"      stage {stage.name}: {len(source)} training samples are fewer than one batch of {bs} x {world} "
            f"x {tc.grad_accum}; it trains on batches of {small}")
        bs = small
        micro_per_epoch = len(source) // (bs * world)
    steps_per_epoch = micro_per_epoch // tc.grad_accum
    total = stage.steps or max(1, math.ceil(stage.epochs * steps_per_epoch))
    opt = torch.optim.AdamW([{k: v for k, v in g.items() if k != "part"} for g in groups], lr=tc.lr, betas=tc.betas)
    sched = lr_schedule(opt, total, stage.warmup_steps, tc.min_lr_ratio)
    model, opt = acc.prepare(raw, opt)

    step, elapsed_before = 0, 0.0
    metrics_path = run_dir / "metrics.jsonl"
    found = checkpoints(ck_dir)
    if resume and found:
        info = load_checkpoint(acc.unwrap_model(model), opt, sched, found[-1])
        step, elapsed_before = info["step"], info["elapsed"]
    if acc.is_main_process and resume:   # drop log lines written after the point we continue from
        kept = [r for r in read_jsonl_tolerant(metrics_path) if r.get("step", 0) <= step_base + step]
        write_jsonl(metrics_path, kept)

    curve = Curve(metrics_path, acc, cfg, step_base + step if resume else None, log) if acc.is_main_process else None
    show = progress and acc.is_main_process
    tty = show and sys.stderr.isatty()
    bar = tqdm(total=total, initial=step, disable=not tty, mininterval=1.0,
               desc=f"train {cfg.name} [{stage.name}]", unit="step", dynamic_ncols=True)
    lines = LogLines(stage.name, total, step) if show and not tty else None
    t_start = time.time()
    win = Window(world, tc.loss_reduction)
    pad_id = task.pad_id
    tokens_per_sample = None
    model.train()
    while step < total:
        epoch = step // steps_per_epoch
        data_epoch = epoch if index == 0 else 1000 * index + epoch   # stage 0 keeps the single-stage order
        examples = source.epoch_examples(data_epoch)
        if tokens_per_sample is None:          # prompt (+ image tokens) + answer, as the model reads them
            tokens_per_sample = round(float(np.mean([len(ids) for ids, _ in examples.pairs])), 2)
        order = np.random.default_rng([tc.seed, data_epoch]).permutation(len(examples))
        first_micro = (step % steps_per_epoch) * tc.grad_accum
        for micro in range(first_micro, steps_per_epoch * tc.grad_accum):
            g = order[micro * bs * world:(micro + 1) * bs * world]
            mine = g[acc.process_index * bs:(acc.process_index + 1) * bs]
            batch = examples.batch(mine, pad_id)
            batch = {k: (v.to(acc.device) if hasattr(v, "to") else v) for k, v in batch.items()}
            with acc.accumulate(model):
                result = answer_loss(model, batch, tc.loss_reduction)
                acc.backward(result.loss)
                if acc.sync_gradients and tc.grad_clip:
                    acc.clip_grad_norm_(model.parameters(), tc.grad_clip)
                opt.step()
                if acc.sync_gradients:
                    step_lr = sched.get_last_lr()[0]     # the rate this update used, for the log
                    sched.step()
                opt.zero_grad(set_to_none=True)
            win.add(result, len(mine), int(batch["attention_mask"].sum()))
            if not acc.sync_gradients:
                continue
            step += 1
            bar.update(1)
            gstep = step_base + step
            if step % tc.log_every == 0 or step == total:
                rec = {"step": gstep, "stage": stage.name, "epoch": round(step / steps_per_epoch, 4), "lr": step_lr,
                       **win.record(), "elapsed_s": elapsed_before + time.time() - t_start}
                bar.set_postfix(loss=f"{rec['loss']:.4f}", img_s=f"{rec['images_per_s']:.0f}",
                                tok_s=f"{rec['tokens_per_s']:.0f}")
                if curve:
                    curve.write(rec)
                if lines and lines.due(step):
                    print(lines.line(step, rec), file=sys.stderr, flush=True)
                win.reset()
            if monitor and (step % tc.eval_every == 0 or step == total):
                t0 = time.time()
                accuracy = monitor(acc.unwrap_model(model))
                model.train()
                if curve:
                    curve.write({"step": gstep, "stage": stage.name, "epoch": round(step / steps_per_epoch, 4),
                                "valid_accuracy": accuracy, "valid_n": monitor.n,
                                **getattr(monitor, "details", {}),          # question sets: per type
                                "elapsed_s": elapsed_before + time.time() - t_start})
                win.pause(time.time() - t0)   # keep validation time out of the throughput figures
            if step % tc.save_every == 0 and step < total:
                acc.wait_for_everyone()
                if acc.is_main_process:
                    save_checkpoint(acc.unwrap_model(model), opt, sched, ck_dir, step,
                                    elapsed_before + time.time() - t_start, tc.keep_checkpoints)
            if step >= total:
                break
    bar.close()
    if curve:
        curve.close()
    raw = acc.unwrap_model(model)
    info = {"name": stage.name, "steps": total, "epochs": round(total / steps_per_epoch, 4),
            "wall_s": round(elapsed_before + time.time() - t_start, 1), "trainable": dict(stage.trainable),
            "trainable_params": sum(p.numel() for p in raw.parameters() if p.requires_grad),
            "tokens_per_sample": tokens_per_sample}
    acc.free_memory()       # accelerate forgets this stage's wrapped model and optimizer before the next prepare
    return info


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory (Linux / macOS), for the cost columns of reports."""
    try:
        import resource
    except ImportError:          # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


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
            "mixed_precision": acc.mixed_precision,
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
