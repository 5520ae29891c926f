"""The ``mistral-vision api ...`` subcommands: each a few library calls and what to print.
Not for: logic (``jobs.py``, ``pricing.py``)."""
from __future__ import annotations

import json
from pathlib import Path

from . import jobs

# ASCII formats compared by `api estimate --dataset`: (label, width, height, crop).
FORMATS = [("10x10, crop 4", 10, 10, 4), ("14x14", 14, 14, 0), ("28x28", 28, 28, 0), ("100x50 (original)", 100, 50, 0)]


def api_command(args) -> int:
    a = args.action
    if a == "estimate":
        _estimate(args.file, args.model, args.epochs, args.steps, args.predict, args.dataset, args.data_dir,
                  args.batch_tokens)
        return 0
    if a == "finetune" and args.dry_run:
        for f in filter(None, [args.train, args.valid]):
            jobs.require_file(f)
        _estimate(args.train, args.model, args.epochs, args.steps)
        print(f"dry run: would upload {args.train}" + (f" and {args.valid}" if args.valid else "")
              + f" and fine-tune {args.model}; nothing was created")
        return 0
    from .client import make_client

    client = make_client(args.server_url)
    if a == "upload":
        print(jobs.upload(client, args.file))
    elif a == "finetune":
        run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(args.train)
        train_id = jobs.upload(client, args.train)
        valid_ids = [jobs.upload(client, args.valid)] if args.valid else []
        job = jobs.create_job(client, args.model, [train_id], valid_ids, args.steps, args.epochs, args.lr,
                              args.suffix, args.wandb_project, auto_start=not args.no_start)
        jobs.record(run_dir, job, train_file=str(args.train), valid_file=args.valid)
        _write_run_config(run_dir, args)
        print(job.id)
        print(f"recorded in {run_dir / jobs.JOB_FILE}; follow it: mistral-vision api wait {job.id} --run-dir {run_dir}")
    elif a == "status":
        print(jobs.progress_line(jobs.get_job(client, args.job)))
    elif a == "wait":
        try:
            job = jobs.wait(client, args.job, Path(args.run_dir) if args.run_dir else None, args.poll)
        except KeyboardInterrupt:
            print(f"stopped waiting; job {args.job} keeps running. Resume with: mistral-vision api wait {args.job}")
            return 130
        print(f"{job.id} {job.status}: {job.fine_tuned_model}")
    elif a == "cancel":
        print(jobs.progress_line(jobs.cancel_job(client, args.job)))
    elif a == "start":
        print(jobs.progress_line(jobs.start_job(client, args.job)))
    elif a == "list":
        jobs.print_jobs(jobs.list_jobs(client))
    return 0


def default_run_dir(train_file: str | Path) -> Path:
    """runs/<name>/data/train.jsonl -> runs/<name>; any other file -> runs/api-<file stem>."""
    p = Path(train_file).resolve()
    if p.parent.name == "data" and (p.parent / "prepare.json").is_file():
        return p.parent.parent
    return Path("runs") / f"api-{p.stem}"


def _write_run_config(run_dir: Path, args) -> None:
    """Make ``run_dir`` a run directory predict/evaluate understand, from the files' prepare.json."""
    from ..config import RunConfig, dump_config, from_dict, validate
    from ..chatfile import PREPARE_FILE

    if (run_dir / "config.json").is_file():
        return
    made = Path(args.train).resolve().parent / PREPARE_FILE
    if not made.is_file():
        print(f"note: {args.train} was not written by `mistral-vision prepare` (no {PREPARE_FILE} beside it); "
              f"predict with this job needs a run directory made by `mistral-vision run` (backend: mistral-api)")
        return
    data = json.loads(made.read_text())
    data.update(name=run_dir.name, runs_dir=str(run_dir.parent), backend="mistral-api",
                api={"model": args.model, "suffix": args.suffix, "server_url": args.server_url})
    dump_config(validate(from_dict(RunConfig, data)), run_dir)


def _estimate(path, model, epochs=None, steps=None, predict=0, dataset=None, data_dir=None,
              batch_tokens=131072) -> None:
    from ..chatfile import load_chat_file
    from .pricing import estimate

    e = estimate([s["messages"] for s in load_chat_file(path)], model, epochs, steps, batch_tokens, predict)
    print(f"{path}: {e['samples']} samples; tokens per sample (Mistral {e['tokenizer']} tokenizer, as {model} "
          f"counts them): min {e['tokens_min']}, median {e['tokens_median']:.0f}, max {e['tokens_max']}; "
          f"total {e['tokens_total']:,}")
    print(f"training: {e['epochs']:.2f} epochs = {e['trained_tokens']:,.0f} tokens (~{e['steps']} steps) -> "
          f"${e['train_cost_usd']:.2f}, then ${e['storage_usd_per_month']:.2f}/month to keep the model")
    if predict:
        print(f"predicting {predict} images: ${e['predict_cost_usd']:.2f}")
    print(f"prices as of {e['prices_taken']}: edit mistral_vision/api/pricing.py:PRICES")
    if dataset:
        _format_table(dataset, model, data_dir)


def _format_table(dataset: str, model: str, data_dir) -> None:
    from ..ascii.render import render_ascii
    from ..data.datasets import load_split
    from .pricing import get_price, mistral_tokenizer, sample_tokens

    price = get_price(model)
    tok = mistral_tokenizer(price.tokenizer)
    data = load_split(dataset, "train", data_dir, offline=True).subset(200)
    print(f"tokens per training sample by ASCII format ({dataset}, 200 training images, art alone as the prompt):")
    for label, w, h, crop in FORMATS:
        arts = render_ascii(data.images, w, h, crop=crop)
        n = [sample_tokens(tok, [{"role": "user", "content": a}, {"role": "assistant", "content": data.label_names[y]}])
             for a, y in zip(arts, data.labels.tolist())]
        mean = sum(n) / len(n)
        print(f"  {label:<18} {mean:8.0f} tokens  ${mean * 10_000 / 1e6 * price.train_per_m:7.2f} "
              "per 10k images per epoch")
