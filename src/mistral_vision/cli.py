"""The ``mistral-vision`` command: thin subcommands over library calls.

User errors print one line and exit with code 2 (``--debug`` shows the traceback).
"""
from __future__ import annotations

import argparse
import sys

from .errors import UserError


def _add_data_args(p, dataset_required=False):
    p.add_argument("--dataset", required=dataset_required, help="mnist | fashion-mnist")
    p.add_argument("--data-dir", help="folder with the IDX files (default: $MISTRAL_VISION_DATA, then the cache)")
    p.add_argument("--offline", action="store_true", help="never download")


def _add_backend_args(p):
    p.add_argument("--backend", choices=("local", "mistral-api"), help="default: the run's backend")
    p.add_argument("--model", help="mistral-api: the fine-tuned model (default: the job recorded in RUN_DIR)")
    p.add_argument("--server-url", help="mistral-api: another API server (default: $MISTRAL_SERVER_URL)")


def _add_tta_arg(p):
    p.add_argument("--tta", metavar="VIEWS", help="test-time augmentation: none, shift4, ... (default: the run's "
                                                  "eval.tta); another choice is written beside, tagged -tta-VIEWS")


def _add_length_args(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=int, help="training steps")
    g.add_argument("--epochs", type=float, help="epochs over the training file")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mistral-vision", description="Teach text LLMs to see, and measure it.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="render a dataset as ASCII chat JSONL (train/valid/test), or write a VQA "
                                       "set as LLaVA JSON + images (--route llava)")
    _add_data_args(p, dataset_required=True)
    p.add_argument("--route", choices=("ascii", "llava"), default="ascii",
                   help="VQA sets: llava writes LLaVA JSON + an image folder, ascii chat JSONL with the art")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="VQA sets: data settings, e.g. train_canvases=5000 (config keys of `data`)")
    p.add_argument("--ascii-size", type=int, default=14, help="characters per line and lines (square)")
    p.add_argument("--width", type=int, help="characters per line (overrides --ascii-size)")
    p.add_argument("--height", type=int, help="lines (overrides --ascii-size)")
    p.add_argument("--ramp", help="background space + ink characters, faint to dark")
    p.add_argument("--crop", type=int, default=0, help="pixels cut from each border first")
    p.add_argument("--invert", action="store_true")
    p.add_argument("--template", default="classify", help="prompt template id or literal with {art}")
    p.add_argument("--valid-size", type=int, default=5000, help="images carved from train for validation")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--out", required=True)

    p = sub.add_parser("validate", help="check a chat JSONL against Mistral's fine-tuning format, or a LLaVA "
                                        "JSON (.json) and its images")
    p.add_argument("file")
    p.add_argument("--image-folder", help="LLaVA JSON: the folder image paths are relative to")
    p = sub.add_parser("reformat", help="repair a chat JSONL; report every sample not kept")
    p.add_argument("file")
    p.add_argument("--out", help="default: FILE with .reformatted.jsonl")

    p = sub.add_parser("train", help="train a config locally (CPU, GPU, or several via accelerate launch)")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("predict", help="predictions (label-scored locally, or the API's answers), appended "
                                       "to JSONL (resumable)")
    p.add_argument("run_dir")
    _add_data_args(p)
    p.add_argument("--split", choices=("train", "valid", "test"))
    p.add_argument("--images", help="an image file or a folder (one subfolder per class)")
    p.add_argument("--limit", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--out")
    _add_tta_arg(p)
    _add_backend_args(p)

    p = sub.add_parser("evaluate", help="metrics.json + figures for one split, or a LLaVA JSON question file")
    p.add_argument("run_dir")
    _add_data_args(p)
    p.add_argument("--split", choices=("train", "valid", "test"))
    p.add_argument("--questions", help="a LLaVA JSON file of questions with answers (instead of --dataset)")
    p.add_argument("--image-folder", help="with --questions: the folder its image paths are relative to")
    p.add_argument("--answers", choices=("score", "generate"), default="score",
                   help="question sets: score the candidate answers (default), or generate and parse option "
                        "letters as LLaVA's ScienceQA evaluation does")
    p.add_argument("--limit", type=int)
    _add_tta_arg(p)
    _add_backend_args(p)

    api = sub.add_parser("api", help="Mistral's hosted fine-tuning (needs MISTRAL_API_KEY and the [api] extra)")
    asub = api.add_subparsers(dest="action", required=True)
    p = asub.add_parser("upload", help="validate a chat JSONL, then upload it for fine-tuning")
    p.add_argument("file")
    p = asub.add_parser("estimate", help="tokens and cost of fine-tuning on a chat JSONL (offline)")
    p.add_argument("file")
    p.add_argument("--model", default="open-mistral-7b")
    _add_length_args(p)
    p.add_argument("--predict", type=int, default=0, metavar="N", help="also price N predictions")
    p.add_argument("--batch-tokens", type=int, default=131072,
                   help="tokens per training step on Mistral's side (converts steps <-> epochs)")
    p.add_argument("--dataset", help="also show tokens per image for several ASCII formats of this dataset")
    p.add_argument("--data-dir")
    p = asub.add_parser("finetune", help="upload train/valid files and start a fine-tuning job")
    p.add_argument("--train", required=True)
    p.add_argument("--valid")
    p.add_argument("--model", required=True, help="base model, e.g. open-mistral-7b")
    _add_length_args(p)
    p.add_argument("--lr", type=float)
    p.add_argument("--suffix")
    p.add_argument("--wandb-project", help="log to Weights & Biases (needs WANDB_API_KEY)")
    p.add_argument("--run-dir", help="where to record the job (default: the folder above data/, or runs/api-NAME)")
    p.add_argument("--no-start", action="store_true", help="create the job without starting it (`api start JOB`)")
    p.add_argument("--dry-run", action="store_true", help="validate and estimate only; create nothing")
    for name, text in (("status", "one job's status, step and losses"), ("cancel", "cancel a job"),
                       ("start", "start a job created with --no-start"),
                       ("wait", "follow a job to the end (Ctrl-C leaves it running)")):
        p = asub.add_parser(name, help=text)
        p.add_argument("job")
        if name == "wait":
            p.add_argument("--run-dir", help="also record progress and the fine-tuned model here")
            p.add_argument("--poll", type=float, default=15.0, help="seconds between checks")
    asub.add_parser("list", help="your fine-tuning jobs")
    for p in asub.choices.values():
        if p.prog.split()[-1] not in ("estimate",):
            p.add_argument("--server-url", help="another API server (default: $MISTRAL_SERVER_URL, then Mistral)")

    p = sub.add_parser("export", help="a finished run's model as a plain transformers folder (LoRA merged)")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True)

    p = sub.add_parser("chat", help="a free (generated) answer about one image, for either route")
    p.add_argument("run_dir")
    p.add_argument("--image", required=True)
    p.add_argument("question", nargs="?", default="")
    p.add_argument("--max-new-tokens", type=int, default=32)

    p = sub.add_parser("report", help="(re)write RUN_DIR/report.md")
    p.add_argument("run_dir")

    tk = sub.add_parser("tokenizer", help="train / measure the ASCII-art tokenizer")
    tsub = tk.add_subparsers(dest="action", required=True)
    for name, text in (("train", "learn an ASCII BPE tokenizer from a dataset's training art"),
                       ("stats", "tokens per image of one or more tokenizers on the same art")):
        p = tsub.add_parser(name, help=text)
        _add_data_args(p, dataset_required=True)
        p.add_argument("--ascii-size", type=int, default=28, help="characters per line and lines (square)")
        p.add_argument("--width", type=int, help="characters per line (overrides --ascii-size)")
        p.add_argument("--height", type=int, help="lines (overrides --ascii-size)")
        p.add_argument("--crop", type=int, default=0, help="pixels cut from each border first")
        p.add_argument("--ramp", help="background space + ink characters, faint to dark")
        p.add_argument("--valid-size", type=int, default=5000, help="images carved from train for validation")
        p.add_argument("--split-seed", type=int, default=0)
    p = tsub.choices["train"]
    p.add_argument("--vocab-size", type=int,
                   default=__import__("mistral_vision.config",   # the config's default, one source of truth
                                      fromlist=["TokenizerConfig"]).TokenizerConfig().vocab_size,
                   help="largest vocabulary, incl. the 357 special/base/byte tokens (default: %(default)s, the "
                        "config default tokenizer.vocab_size)")
    p.add_argument("--split", default="none", choices=("none", "rows", "chunks"), help="what one BPE word is")
    p.add_argument("--chunk-size", type=int, default=2, help="characters per chunk with --split chunks")
    p.add_argument("--train-images", type=int, default=20000)
    p.add_argument("--out", required=True)
    p = tsub.choices["stats"]
    p.add_argument("--tokenizer", action="append", metavar="DIR|mistral-v1|mistral-tekken|char",
                   help="repeatable (default: char, mistral-v1, mistral-tekken)")
    p.add_argument("--split", default="valid", choices=("train", "valid", "test"), help="images to measure on")
    p.add_argument("--limit", type=int, default=2000, help="images measured")

    p = sub.add_parser("compare", help="the same experiment per config x backbone x seed, one table with honest "
                                       "statistics; or --analytic: 7B backbones costed from their configs alone")
    p.add_argument("configs", nargs="*", metavar="CONFIG",
                   help="configs to run (ASCII or LLaVA route), or one compare spec (configs/compare/cpu.yaml: "
                        "each config with its own --set, backbones, seeds, out)")
    p.add_argument("--backbones",
                   help="comma-separated backbone ids (default: the spec's, else mistral-tiny,llama-tiny)")
    p.add_argument("--seeds", type=int, help="seeds 0 .. N-1 per config and backbone (default: the spec's, else 3)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="applied to every cell")
    p.add_argument("--plan", action="store_true", help="print one `mistral-vision run` command per cell and stop")
    p.add_argument("--analytic", nargs="+", metavar="ID",
                   help="backbones to cost from their configs alone: mistral-7b, mistral-7b-instruct, llama-2-7b, "
                        "vicuna-7b, hf:<folder or hub id>")
    p.add_argument("--out", metavar="DIR", help="cells and compare/ go here (with --analytic: analytic.md/.json)")

    p = sub.add_parser("run", help="prepare -> train -> evaluate -> report")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return ap


def _quiet_libraries() -> None:
    """Our own progress bars and log lines say what is happening; silence the libraries' ones."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def _is_vqa(dataset) -> bool:
    from .data.vqa import is_vqa

    return bool(dataset) and is_vqa(dataset)


def _answers_questions(run_dir) -> bool:
    """True if the run was trained on a question set (its evaluations are question sets too)."""
    from pathlib import Path

    from .data.questions import is_question_set

    if not (Path(run_dir) / "config.json").is_file():
        return False
    from .config import load_run_config

    return is_question_set(load_run_config(run_dir).data)


def _cmd(args) -> int:
    c = args.command
    if c in ("train", "predict", "evaluate", "run", "export", "chat") or (c == "compare" and not args.analytic):
        _quiet_libraries()
    if c == "prepare" and _is_vqa(args.dataset):
        from .config import DataConfig, apply_overrides, from_dict
        from .pipeline import prepare_vqa

        d = from_dict(DataConfig, apply_overrides({"dataset": args.dataset, "valid_size": args.valid_size,
                                                   "split_seed": args.split_seed, "data_dir": args.data_dir,
                                                   "offline": args.offline}, args.set), "data")
        counts = prepare_vqa(args.dataset, args.out, args.route, d)
        for split, n in counts.items():
            print(f"{args.out}/{split}.{'json' if args.route == 'llava' else 'jsonl'}: {n} samples")
    elif c == "prepare":
        from .pipeline import prepare

        w, h = args.width or args.ascii_size, args.height or args.ascii_size
        counts = prepare(args.dataset, args.out, args.data_dir, args.offline, w, h, args.ramp, args.invert,
                         args.crop, args.template, valid_size=args.valid_size, split_seed=args.split_seed)
        for split, n in counts.items():
            print(f"{args.out}/{split}.jsonl: {n} samples")
    elif c == "validate" and (args.file.endswith(".json") or args.image_folder):
        from .data.llava_json import validate_llava_json

        n, problems = validate_llava_json(args.file, args.image_folder)
        for msg in problems:
            print(f"{args.file}: {msg}")
        if problems:
            print(f"{args.file}: {len(problems)} problem(s) in {n} samples", file=sys.stderr)
            return 2
        print(f"{args.file}: OK, {n} samples (LLaVA JSON)")
    elif c == "validate":
        from .chatfile import check_file

        res = check_file(args.file)
        for lineno, msg in res.problems:
            print(f"{args.file}:{lineno}: {msg}")
        if not res.ok:
            print(f"{args.file}: {len(res.problems)} problem(s) in {res.n_lines} lines", file=sys.stderr)
            return 2
        print(f"{args.file}: OK, {res.n_lines} samples")
    elif c == "reformat":
        from .chatfile import reformat_file

        out = args.out or (args.file[:-6] if args.file.endswith(".jsonl") else args.file) + ".reformatted.jsonl"
        rep = reformat_file(args.file, out)
        for lineno, why in rep.dropped:
            print(f"{args.file}:{lineno}: dropped: {why}")
        print(f"{out}: kept {rep.kept} ({rep.repaired} repaired), dropped {len(rep.dropped)}")
    elif c == "train":
        from .config import load_config
        from .pipeline import train_run

        s = train_run(load_config(args.config, args.set), resume=args.resume)
        print(f"trained {s['steps']} steps in {s['wall_s'] / 60:.1f} min")
    elif c == "predict":
        from .predict import predict

        r = predict(args.run_dir, args.dataset, args.split, args.images, args.data_dir, args.offline, args.limit,
                    args.out, args.batch_size, backend=args.backend, model=args.model, server_url=args.server_url,
                    tta=args.tta)
        rate = f", {r.images_per_s:.0f} images/s" if r.new else ""
        print(f"{r.path}: {r.n} predictions ({r.new} new{rate})")
        if r.n <= 10:   # a handful of images: show the answers too
            from .io import read_jsonl_tolerant

            for rec in read_jsonl_tolerant(r.path):
                how = f"p={rec['prob']:.3f}" if rec.get("prob") is not None else f"answer {rec.get('answer')!r}"
                print(f"  {rec.get('source', rec['index'])}: {rec['pred_name']} ({how})")
    elif c == "evaluate" and (args.questions or _is_vqa(args.dataset) or args.dataset == "llava-json"
                              or _answers_questions(args.run_dir)):
        from .eval.questions import evaluate_questions

        if not args.questions and not args.split:
            raise UserError("evaluate --dataset needs --split")
        m = evaluate_questions(args.run_dir, args.dataset, args.split, args.questions, args.image_folder, args.limit,
                               tta=args.tta, answers=args.answers)
        types = ", ".join(f"{t} {v['accuracy']:.3f}" for t, v in m["per_type"].items())
        print(f"accuracy {m['accuracy']:.4f} on {m['n']} questions ({types}); see {m['eval_dir']}/")
    elif c == "evaluate":
        from .eval.evaluate import evaluate

        if not args.dataset or not args.split:
            raise UserError("evaluate needs --dataset and --split (or --questions FILE)")
        m = evaluate(args.run_dir, args.dataset, args.split, args.data_dir, args.offline, args.limit,
                     backend=args.backend, model=args.model, server_url=args.server_url, tta=args.tta)
        print(f"accuracy {m['accuracy']:.4f} on {m['n']} images; see {m['eval_dir']}/")
    elif c == "export":
        from .export import export_run

        info = export_run(args.run_dir, args.out)
        print(f"{args.out}: {info['class']} ({info['route']} route{', LoRA merged' if info['lora_merged'] else ''})")
    elif c == "chat":
        from .infer.chat import chat

        print(chat(args.run_dir, args.image, args.question, args.max_new_tokens))
    elif c == "report":
        from .eval.report import write_report

        print(write_report(args.run_dir))
    elif c == "tokenizer":
        _tokenizer_cmd(args)
    elif c == "api":
        from .api.commands import api_command

        return api_command(args)
    elif c == "compare" and not args.analytic:
        _compare_cmd(args)
    elif c == "compare":
        from .compare.analytic import analytic_table, format_markdown, to_json

        rows = analytic_table(args.analytic)
        md = format_markdown(rows)
        print(md, end="")
        if args.out:
            from pathlib import Path

            from .io import write_json, write_text

            write_text(Path(args.out) / "analytic.md", md)
            write_json(Path(args.out) / "analytic.json", to_json(rows))
            print(f"wrote {Path(args.out) / 'analytic.md'} and {Path(args.out) / 'analytic.json'}")
    elif c == "run":
        from .pipeline import run

        print(f"report: {run(args.config, args.set)}")
    return 0


def _compare_cmd(args) -> None:
    from .compare import runner

    if not args.configs:
        raise UserError("compare needs CONFIG files, a compare spec (or --analytic IDS)")
    specs = [c for c in args.configs if runner.is_spec(c)]
    if specs and len(args.configs) > 1:
        raise UserError(f"compare: {specs[0]} is a compare spec; give it alone, not with other configs")
    if specs:
        spec = runner.load_spec(specs[0])
        configs, sets, out, ceiling_epochs = spec.configs, list(spec.set), spec.out, spec.ceiling_epochs
        backbones, seeds = spec.backbones, spec.seeds
    else:                                   # configs as they are, with a spec's defaults
        defaults = runner.CompareSpec(configs={})
        configs, sets, ceiling_epochs = args.configs, [], defaults.ceiling_epochs
        backbones, seeds = defaults.backbones, defaults.seeds
        out = f"runs/compare-{'-'.join(c.rsplit('/', 1)[-1].removesuffix('.yaml') for c in args.configs)}"
    if args.backbones is not None:          # the spec's overrides still apply to the backbones it names
        own = backbones if isinstance(backbones, dict) else {}
        backbones = {b.strip(): own.get(b.strip(), ()) for b in args.backbones.split(",") if b.strip()}
    seeds = args.seeds if args.seeds is not None else seeds
    out = args.out or out
    cells = runner.plan(configs, backbones, seeds, sets, out, last=args.set)
    if args.plan:
        for cell in cells:
            print(runner.command(cell))
        return
    runner.run_cells(cells, out, ceiling_epochs=ceiling_epochs)
    res = runner.collect(cells, out)
    print(f"{out}/compare/results.md ({len(res['rows'])} rows, {len(res['missing'])} cells missing)")


def _tokenizer_cmd(args) -> None:
    from .models import ascii_tokenizer as at

    w, h = args.width or args.ascii_size, args.height or args.ascii_size
    if args.action == "train":
        st = at.train_from_dataset(args.out, args.dataset, w, h, args.vocab_size, args.split, args.chunk_size,
                                   args.crop, args.ramp, args.train_images, args.data_dir, args.offline,
                                   args.valid_size, args.split_seed)
        print(f"{args.out}: {st['vocab']} tokens; on its {st['images']} training images "
              f"{st['tokens_mean']:.1f} tokens per image for {st['chars_mean']:.0f} characters (lossless)")
        return
    arts = at.render_split(args.dataset, args.split, w, h, args.crop, args.ramp, args.limit, args.data_dir,
                           args.offline, args.valid_size, args.split_seed)
    rows = at.compare(args.tokenizer or list(at.REFERENCE_TOKENIZERS), arts)
    print(f"{args.dataset} {args.split} ({len(arts)} images) as {w}x{h} ASCII art, {rows[0]['chars_mean']:.0f} "
          "characters per image")
    print(f"{'tokenizer':<28} {'tokens/image':>12} {'p95':>6} {'chars/token':>11}")
    for r in rows:
        print(f"{r['tokenizer']:<28} {r['tokens_mean']:>12.1f} {r['tokens_p95']:>6.0f} {r['chars_per_token']:>11.2f}")


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "chat" and not args.question and not extra[0].startswith("-"):
        args.question = " ".join(extra)      # `chat RUN --image F "question"`: the question after the options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return _cmd(args)
    except UserError as e:
        if args.debug:
            raise
        print(f"mistral-vision: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mistral-vision: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
