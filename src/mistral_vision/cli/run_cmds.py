"""Subcommands on configs and run folders: ``train``, ``run``, ``pretrain``, ``predict``, ``evaluate``, ``export``,
``chat``, ``report``."""
from __future__ import annotations

from ..errors import UserError
from .common import add_backend_args, add_data_args, add_tta_arg


def register(sub) -> None:
    p = sub.add_parser("train", help="train a config locally (CPU, GPU, or several via accelerate launch)")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=train, quiet=True)

    p = sub.add_parser("predict", help="predictions (label-scored locally, or the API's answers), appended "
                                       "to JSONL (resumable)")
    p.add_argument("run_dir")
    add_data_args(p)
    p.add_argument("--split", choices=("train", "valid", "test"))
    p.add_argument("--images", help="an image file or a folder (one subfolder per class)")
    p.add_argument("--limit", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--out")
    add_tta_arg(p)
    add_backend_args(p)
    p.set_defaults(func=predict, quiet=True)

    p = sub.add_parser("evaluate", help="metrics.json + figures for one split, or a LLaVA JSON question file")
    p.add_argument("run_dir")
    add_data_args(p)
    p.add_argument("--split", choices=("train", "valid", "test"))
    p.add_argument("--questions", help="a LLaVA JSON file of questions with answers (instead of --dataset)")
    p.add_argument("--image-folder", help="with --questions: the folder its image paths are relative to")
    p.add_argument("--answers", choices=("score", "generate"), default="score",
                   help="question sets: score the candidate answers (default), or generate and parse option "
                        "letters as LLaVA's ScienceQA evaluation does")
    p.add_argument("--limit", type=int)
    add_tta_arg(p)
    add_backend_args(p)
    p.set_defaults(func=evaluate, quiet=True)

    p = sub.add_parser("export", help="a finished run's model as a plain transformers folder (LoRA merged)")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True)
    p.set_defaults(func=export, quiet=True)

    p = sub.add_parser("chat", help="a free (generated) answer about one image, for either route")
    p.add_argument("run_dir")
    p.add_argument("--image", required=True)
    p.add_argument("question", nargs="?", default="")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.set_defaults(func=chat, quiet=True)

    p = sub.add_parser("report", help="(re)write RUN_DIR/report.md")
    p.add_argument("run_dir")
    p.set_defaults(func=report)

    p = sub.add_parser("run", help="prepare -> train -> evaluate -> report")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=run, quiet=True)

    p = sub.add_parser("pretrain", help="pretrain the LLM of a text-only config once (train, per-skill evaluation, "
                                        "report); a finished run is reused")
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.set_defaults(func=pretrain, quiet=True)


def train(args) -> int:
    from ..config import load_config
    from ..pipeline import train_run

    s = train_run(load_config(args.config, args.set), resume=args.resume)
    print(f"trained {s['steps']} steps in {s['wall_s'] / 60:.1f} min")
    return 0


def run(args) -> int:
    from ..pipeline import run as run_pipeline

    print(f"report: {run_pipeline(args.config, args.set)}")
    return 0


def pretrain(args) -> int:
    from ..pipeline import pretrain as pretrain_llm

    pretrain_llm(args.config, args.set)
    return 0


def predict(args) -> int:
    from ..predict import predict as predict_run

    r = predict_run(args.run_dir, args.dataset, args.split, args.images, args.data_dir, args.offline, args.limit,
                    args.out, args.batch_size, backend=args.backend, model=args.model, server_url=args.server_url,
                    tta=args.tta)
    rate = f", {r.images_per_s:.0f} images/s" if r.new else ""
    print(f"{r.path}: {r.n} predictions ({r.new} new{rate})")
    if r.n <= 10:   # a handful of images: show the answers too
        from ..io import read_jsonl_tolerant

        for rec in read_jsonl_tolerant(r.path):
            how = f"p={rec['prob']:.3f}" if rec.get("prob") is not None else f"answer {rec.get('answer')!r}"
            print(f"  {rec.get('source', rec['index'])}: {rec['pred_name']} ({how})")
    return 0


def _asks_questions(args) -> bool:
    """True if ``evaluate`` is about a question set: named, or the run was trained on one."""
    from pathlib import Path

    from ..data.run_data import is_question_set
    from ..data.vqa import is_vqa

    if args.questions or args.dataset == "llava-json" or (args.dataset and is_vqa(args.dataset)):
        return True
    if not (Path(args.run_dir) / "config.json").is_file():
        return False
    from ..config import load_run_config

    return is_question_set(load_run_config(args.run_dir).data)


def evaluate(args) -> int:
    if _asks_questions(args):
        from ..eval.questions import evaluate_questions

        if not args.questions and not args.split:
            raise UserError("evaluate --dataset needs --split")
        m = evaluate_questions(args.run_dir, args.dataset, args.split, args.questions, args.image_folder, args.limit,
                               tta=args.tta, answers=args.answers)
        types = ", ".join(f"{t} {v['accuracy']:.3f}" for t, v in m["per_type"].items())
        print(f"accuracy {m['accuracy']:.4f} on {m['n']} questions ({types}); see {m['eval_dir']}/")
        return 0
    from ..eval.evaluate import evaluate as evaluate_split

    if not args.dataset or not args.split:
        raise UserError("evaluate needs --dataset and --split (or --questions FILE)")
    m = evaluate_split(args.run_dir, args.dataset, args.split, args.data_dir, args.offline, args.limit,
                       backend=args.backend, model=args.model, server_url=args.server_url, tta=args.tta)
    print(f"accuracy {m['accuracy']:.4f} on {m['n']} images; see {m['eval_dir']}/")
    return 0


def export(args) -> int:
    from ..export import export_run

    info = export_run(args.run_dir, args.out)
    print(f"{args.out}: {info['class']} ({info['route']} route{', LoRA merged' if info['lora_merged'] else ''})")
    return 0


def chat(args) -> int:
    import sys

    from ..infer.chat import chat as chat_once

    print(chat_once(args.run_dir, args.image, args.question, args.max_new_tokens,
                    warn=lambda why: print(f"mistral-vision: warning: {why}", file=sys.stderr)))
    return 0


def report(args) -> int:
    from ..eval.report import write_report

    print(write_report(args.run_dir))
    return 0
