"""Whole jobs built from library calls: ``prepare`` (dataset -> chat JSONL splits) and
``run`` (prepare -> train -> predict -> evaluate -> report into ``runs/<name>/``).
Every stage is resumable, so rerunning a killed ``run`` continues where it stopped.
Not for: the stages' internals.
"""
from __future__ import annotations

from pathlib import Path

from .chatfile import PREPARE_FILE
from .data.datasets import DataUnavailable
from .errors import UserError


def prepare(dataset: str, out: str | Path, data_dir=None, offline: bool = False, width: int = 14, height: int = 14,
            ramp: str | None = None, invert: bool = False, crop: int = 0, template: str = "plain",
            system: str | None = None, valid_size: int = 5000, split_seed: int = 0,
            limits: dict | None = None, log=print) -> dict[str, int]:
    """Write ``train/valid/test.jsonl`` chat files; returns sample counts per written split."""
    from .ascii.render import DEFAULT_RAMP
    from .data.datasets import load_split
    from .io import write_json, write_jsonl
    from .prompts import PromptFormat
    from .tasks.ascii import AsciiTask

    fmt = PromptFormat(template, system)
    ramp = ramp or DEFAULT_RAMP
    # `api finetune` trusts prepare.json to describe the files beside it: drop a stale one now and
    # write the new one only once every split is written, so a failed prepare leaves none.
    (Path(out) / PREPARE_FILE).unlink(missing_ok=True)
    counts = {}
    for split in ("train", "valid", "test"):
        try:
            data = load_split(dataset, split, data_dir, offline, valid_size, split_seed)
        except DataUnavailable as e:
            if split != "test":
                raise
            log(f"note: test split not written: {e.short}")
            continue
        data = data.subset((limits or {}).get(split))
        task = AsciiTask(None, data.label_names, dataset, width, height, ramp, invert, crop, fmt)   # renders only
        counts[split] = write_jsonl(Path(out) / f"{split}.jsonl", task.chat_samples(data.images, data.labels))
    # How the files were made, as config sections: an API run started from these files
    # (`api finetune`) predicts with exactly the same rendering and prompt.
    write_json(Path(out) / PREPARE_FILE, {
        "data": {"dataset": dataset, "valid_size": valid_size, "split_seed": split_seed},
        "ascii": {"width": width, "height": height, "ramp": ramp, "invert": invert, "crop": crop},
        "prompt": {"template": template, "system": system}})
    return counts


def prepare_vqa(dataset: str, out: str | Path, route: str = "llava", data=None, ascii_cfg=None, log=print) -> dict:
    """A synthetic VQA set on disk, every split its base dataset has.

    ``llava``: LLaVA JSON (``{split}.json``: training conversations and captions; valid / test:
    single-turn questions with answers, ``type`` and ``candidates`` keys) plus an image folder
    (``images/{split}/{row}.png``), readable by LLaVA's own tools. ``ascii``: chat JSONL in
    Mistral's fine-tuning format with each canvas's ASCII art in the first user turn.
    ``data`` is a DataConfig (sizes, seed, grid); the folder is written whole or not at all.
    """
    from dataclasses import replace

    from PIL import Image

    from .config import AsciiConfig, DataConfig
    from .data.llava_json import write_llava_json
    from .data.questions import from_vqa, vqa_json_samples, vqa_split
    from .io import atomic_dir, write_json, write_jsonl

    if route not in ("llava", "ascii"):
        raise UserError(f"unknown route {route!r}; known: ascii, llava")
    d = replace(data or DataConfig(), dataset=dataset, format="idx")
    from .data.vqa import check_types, get_vqa

    check_types(d.question_types, get_vqa(dataset))
    counts = {}
    with atomic_dir(out) as tmp:
        for split in ("train", "valid", "test"):
            try:
                sp = vqa_split(d, split)
            except DataUnavailable as e:
                if split != "test":
                    raise
                log(f"note: test split not written: {e.short}")
                continue
            conv = split == "train"
            if route == "llava":
                folder = tmp / "images" / split
                folder.mkdir(parents=True)
                for row, img in enumerate(sp.images):
                    Image.fromarray(img).save(folder / f"{row:06d}.png")
                samples = vqa_json_samples(sp, conv, lambda row, s=split: f"{s}/{row:06d}.png")
                write_llava_json(tmp / f"{split}.json", samples)
            else:
                from .tasks.ascii import AsciiTask

                a = ascii_cfg or AsciiConfig(width=28, height=28)
                task = AsciiTask(None, sp.label_names, dataset, a.width, a.height, a.ramp, a.invert, a.crop)
                qs = from_vqa(sp, conv)
                samples = [{"messages": task.turn_messages(it.turns, qs.images[it.image])} for it in qs.items]
                write_jsonl(tmp / f"{split}.jsonl", samples)
            counts[split] = len(samples)
        write_json(tmp / PREPARE_FILE, {"data": {k: v for k, v in vars(d).items()}, "route": route})
    return counts


def train_run(cfg, resume: bool = False, progress: bool = True, log=print) -> dict:
    """Train ``cfg`` (its pretrained LLM built first if ``model.pretrain`` names an absent one) with the validation
    monitor drawing the training curve; returns the summary. ``data.select`` is resolved first (``RUN/selection/``),
    so the loaders train on the subset."""
    from .infer.monitor import validation_monitor
    from .select.selection import resolve_run_selection
    from .train.loop import train

    ensure_pretrained(cfg, progress, log)
    resolve_run_selection(cfg, log if progress else (lambda *_: None))
    return train(cfg, resume=resume, progress=progress, monitor_factory=validation_monitor)


def pretrain(config_path: str | Path, overrides: list[str] | None = None, progress: bool = True,
             log=print) -> Path:
    """Pretrain the LLM of a text-only config into ``runs/<name>/`` (train, per-skill evaluation, report) once;
    a finished run is reused untouched. Returns its ``model/`` folder: ``model.backbone: hf:<that folder>``."""
    from .config import load_config
    from .data.textdata import is_text_data

    cfg = load_config(config_path, overrides)
    if not is_text_data(cfg.data):
        raise UserError(f"{config_path}: pretrain takes a text-only config (data.dataset: text-skills or "
                        f"data.format: text); this one trains on {cfg.data.dataset}")
    model_dir = cfg.run_dir / "model"
    if _pretrained(cfg):
        log(f"pretrained LLM {model_dir}: finished earlier, nothing to do (model.backbone: hf:{model_dir})")
        return model_dir
    run(config_path, overrides, progress, log)
    log(f"pretrained LLM: {model_dir} (model.backbone: hf:{model_dir})")
    return model_dir


def _pretrained(cfg) -> bool:
    """True if ``cfg``'s run is finished (model and report); a finished run of another config is refused."""
    from .models.build import is_saved
    from .train.checkpoints import config_difference

    run_dir = cfg.run_dir
    if not (is_saved(run_dir / "model") and (run_dir / "report.md").is_file()):
        return False
    diff = config_difference(cfg, run_dir)
    if diff:
        raise UserError(f"{run_dir} was pretrained with {diff}; give the pretraining config a new name (it names "
                        "runs/<name>/model) or delete that run")
    return True


def ensure_pretrained(cfg, progress: bool = True, log=print) -> None:
    """Build the LLM that ``model.pretrain`` names when its folder is absent, and say so; reuse a finished one."""
    from .config import load_config

    mc = cfg.model
    if mc.pretrain is None:
        return
    pcfg = load_config(mc.pretrain)
    model_dir = pcfg.run_dir / "model"
    if Path(mc.backbone[3:]).expanduser().resolve() != model_dir.resolve():
        raise UserError(f"config model.pretrain {mc.pretrain} builds {model_dir}, but model.backbone is "
                        f"{mc.backbone}; make them name the same folder (model.backbone: hf:{model_dir})")
    if _pretrained(pcfg):
        return
    log(f"pretrained LLM {model_dir} absent: building it with {mc.pretrain} first")
    pretrain(mc.pretrain, progress=progress, log=log)


def run(config_path: str | Path | None, overrides: list[str] | None = None, progress: bool = True,
        log=print) -> Path:
    """Run a config end to end; returns the report path."""
    import json

    from .config import load_config
    from .eval.evaluate import evaluate
    from .eval.report import write_report

    cfg = load_config(config_path, overrides)
    ensure_pretrained(cfg, progress, log)
    from .select.selection import check_run_manifest

    check_run_manifest(cfg)                       # before prepare writes RUN/data
    run_dir = cfg.run_dir
    d, a = cfg.data, cfg.ascii
    unavailable = {}                              # split -> why its files are missing (said once, in the log)
    from .data.run_data import is_question_set

    questions = is_question_set(d)
    from .data.textdata import is_text_data

    if is_text_data(d):
        log(f"[1/4] prepare: nothing to write ({d.dataset if d.format == 'idx' else d.path}: text, read or "
            "generated in memory)")
    elif questions:
        log(f"[1/4] prepare: nothing to write ({d.dataset if d.format == 'idx' else d.path}: the question set is "
            "read or generated in memory; `prepare --route llava` writes it as files)")
    elif cfg.route == "ascii":
        log(f"[1/4] prepare: {d.dataset} -> {run_dir / 'data'}")
        counts = prepare(d.dataset, run_dir / "data", d.data_dir, d.offline, a.width, a.height, a.ramp, a.invert,
                         a.crop, cfg.prompt.template, cfg.prompt.system, d.valid_size, d.split_seed,
                         {"train": d.train_limit, "valid": d.valid_limit, "test": d.test_limit}, log)
        log("      " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
        if "test" not in counts:                  # prepare said why; evaluation does not try (and fail) again
            unavailable["test"] = "its files are not here"
    else:
        log(f"[1/4] prepare: nothing to write for route {cfg.route} (the tower reads the images directly)")
    if cfg.backend == "mistral-api":
        api_finetune_stage(cfg, log)
    else:
        from .train.checkpoints import has_training_state

        resume = has_training_state(run_dir)
        log(f"[2/4] train: {cfg.model.backbone}" + (" (resuming)" if resume else ""))
        summary = train_run(cfg, resume=resume, progress=progress, log=log)
        log(f"      {summary['steps']} steps in {summary['wall_s'] / 60:.1f} min")
    notes = []
    for split in cfg.eval.splits:
        limit = {"train": d.train_limit, "valid": d.valid_limit, "test": d.test_limit}[split]
        if split in unavailable:
            notes.append(_no_test_note(unavailable[split], run_dir, d.dataset))
            continue
        if d.format == "text" and not getattr(d, f"{split}_path"):
            notes.append(f"{split} not evaluated: a text corpus has held-out questions only in data.{split}_path "
                         "(LLaVA JSON with answers)")
            continue
        log(f"[3/4] evaluate: {split}")
        try:
            if questions:
                from .eval.questions import evaluate_questions

                m = evaluate_questions(run_dir, d.dataset if d.format == "idx" else d.format, split,
                                       progress=progress)
                log("      " + ", ".join(f"{t} {v['accuracy']:.3f}" for t, v in m["per_type"].items()))
                log(f"      accuracy {m['accuracy']:.4f} on {m['n']} questions")
                continue
            m = evaluate(run_dir, d.dataset, split, d.data_dir, d.offline, limit, progress)
        except DataUnavailable as e:      # no t10k files: the run goes on without its test split, said once
            if split != "test":
                raise
            notes.append(_no_test_note(e.short, run_dir, d.dataset))
            log(f"      skipped: {e.short}")
            continue
        log(f"      accuracy {m['accuracy']:.4f} on {m['n']} images (majority baseline {m['majority_baseline']:.4f})")
    path = write_report(run_dir, notes)
    log(f"[4/4] report: {path}")
    log(json.dumps({s: round(m["accuracy"], 4) for s, m in _evals(run_dir).items()}))
    return path


def _no_test_note(why: str, run_dir, dataset: str) -> str:
    return (f"test split not evaluated: {why}; with the official t10k files beside the train files, "
            f"`mistral-vision evaluate {run_dir} --dataset {dataset} --split test` adds it")


def _evals(run_dir):
    from .eval.evaluate import load_metrics

    return load_metrics(run_dir)


def api_finetune_stage(cfg, log=print) -> None:
    """Fine-tune through Mistral's API (or reuse ``api.fine_tuned_model``); resumable via api_job.json."""
    from .api import jobs
    from .api.client import make_client
    from .config import dump_config

    run_dir, ac = cfg.run_dir, cfg.api
    dump_config(cfg, run_dir)
    if ac.fine_tuned_model:
        log(f"[2/4] fine-tune: skipped, predicting with {ac.fine_tuned_model}")
        return
    client = make_client(ac.server_url, ac.timeout_s)
    job_path = run_dir / jobs.JOB_FILE
    if job_path.is_file():
        job_id = jobs.recorded_job(run_dir)["job_id"]
        log(f"[2/4] fine-tune: following job {job_id} (recorded in {job_path})")
    else:
        log(f"[2/4] fine-tune: uploading and creating a job on {ac.model}")
        train_id = jobs.upload(client, run_dir / "data" / "train.jsonl")
        valid_id = jobs.upload(client, run_dir / "data" / "valid.jsonl")
        job = jobs.create_job(client, ac.model, [train_id], [valid_id], ac.training_steps,
                              None if ac.training_steps else ac.epochs, ac.lr, ac.suffix)
        jobs.record(run_dir, job)
        job_id = job.id
        log(f"      job {job_id}")
    jobs.wait(client, job_id, run_dir, ac.poll_s, log=lambda line: log("      " + line))
