"""Data-file subcommands: ``prepare`` (a dataset as chat JSONL or LLaVA JSON), ``validate``, ``reformat``."""
from __future__ import annotations

import sys

from ..errors import UserError
from .common import add_ascii_args, add_data_args, add_split_args


def register(sub) -> None:
    p = sub.add_parser("prepare", help="render a dataset as ASCII chat JSONL (train/valid/test), or write a VQA "
                                       "set as LLaVA JSON + images (--route llava)")
    add_data_args(p, dataset_required=True)
    p.add_argument("--route", choices=("ascii", "llava"), default="ascii",
                   help="VQA sets: llava writes LLaVA JSON + an image folder, ascii chat JSONL with the art")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="VQA sets: data settings, e.g. train_canvases=5000 or data.train_canvases=5000 (as `run --set`)")
    add_ascii_args(p, 14)
    p.add_argument("--invert", action="store_true")
    p.add_argument("--template", default="classify", help="prompt template id or literal with {art}")
    add_split_args(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=prepare)

    p = sub.add_parser("validate", help="check a chat JSONL against Mistral's fine-tuning format, or a LLaVA "
                                        "JSON (.json) and its images")
    p.add_argument("file")
    p.add_argument("--image-folder", help="LLaVA JSON: the folder image paths are relative to")
    p.set_defaults(func=validate)

    p = sub.add_parser("reformat", help="repair a chat JSONL; report every sample not kept")
    p.add_argument("file")
    p.add_argument("--out", help="default: FILE with .reformatted.jsonl")
    p.set_defaults(func=reformat)


def prepare(args) -> int:
    from ..data.vqa import is_vqa

    if args.dataset and is_vqa(args.dataset):
        from ..pipeline import prepare_vqa

        counts = prepare_vqa(args.dataset, args.out, args.route, vqa_data_config(args))
        for split, n in counts.items():
            print(f"{args.out}/{split}.{'json' if args.route == 'llava' else 'jsonl'}: {n} samples")
        return 0
    if args.route == "llava":
        raise UserError(f"prepare --route llava writes LLaVA JSON for the VQA sets (mnist-vqa, fashion-vqa); "
                        f"{args.dataset} trains on the LLaVA route straight from its files: "
                        "`mistral-vision run` with `route: llava` (configs/mnist-llava-cpu.yaml)")
    if args.set:
        raise UserError(f"prepare --set is for the VQA sets' data settings; {args.dataset} is rendered with "
                        "the flags (--ascii-size, --ramp, --crop, ...)")
    from ..pipeline import prepare as prepare_ascii

    w, h = args.width or args.ascii_size, args.height or args.ascii_size
    counts = prepare_ascii(args.dataset, args.out, args.data_dir, args.offline, w, h, args.ramp, args.invert,
                           args.crop, args.template, valid_size=args.valid_size, split_seed=args.split_seed)
    for split, n in counts.items():
        print(f"{args.out}/{split}.jsonl: {n} samples")
    return 0


def vqa_data_config(args):
    """The data section ``prepare --set`` describes, checked as ``run`` checks it."""
    from .common import data_section

    flags = {"dataset": args.dataset, "valid_size": args.valid_size, "split_seed": args.split_seed,
             "offline": str(args.offline).lower()}
    if args.data_dir:
        flags["data_dir"] = args.data_dir
    return data_section(flags, args.set, "prepare")


def validate(args) -> int:
    if args.file.endswith(".json") or args.image_folder:
        from ..data.llava_json import validate_llava_json

        n, problems = validate_llava_json(args.file, args.image_folder)
        for msg in problems:
            print(f"{args.file}: {msg}")
        if problems:
            print(f"{args.file}: {len(problems)} problem(s) in {n} samples", file=sys.stderr)
            return 2
        print(f"{args.file}: OK, {n} samples (LLaVA JSON)")
        return 0
    from ..chatfile import check_file

    res = check_file(args.file)
    for lineno, msg in res.problems:
        print(f"{args.file}:{lineno}: {msg}")
    if not res.ok:
        print(f"{args.file}: {len(res.problems)} problem(s) in {res.n_lines} lines", file=sys.stderr)
        return 2
    print(f"{args.file}: OK, {res.n_lines} samples")
    return 0


def reformat(args) -> int:
    from ..chatfile import reformat_file

    out = args.out or (args.file[:-6] if args.file.endswith(".jsonl") else args.file) + ".reformatted.jsonl"
    rep = reformat_file(args.file, out)
    for lineno, why in rep.dropped:
        print(f"{args.file}:{lineno}: dropped: {why}")
    print(f"{out}: kept {rep.kept} ({rep.repaired} repaired), dropped {len(rep.dropped)}")
    return 0
