"""``select``: choose a subset of a question set to train on; writes ``train.json`` and ``selection.json``."""
from __future__ import annotations

from ..errors import UserError

# The method parameters, as flags (default None: not given, so one the method does not take is refused).
PARAM_FLAGS = {
    "from_run": ("RUN", str, "a trained run: its losses (loss, handpicked) or embeddings (kcenter, clusters)"),
    "field": ("F", str, "stratified / handpicked: the strata: type, class, or a sample key such as subject"),
    "allocation": ("A", str, "stratified: proportional (default) | balanced"),
    "measure": ("M", str, "loss: loss (default, mean answer-token NLL) | el2n"),
    "band": ("B", str, "loss: high (default) | middle | ccs (coverage-centric, Zheng et al. 2023)"),
    "bins": ("N", int, "loss --band ccs: score bins (default 50)"),
    "hard_cut": ("F", float, "loss --band ccs: fraction of the hardest dropped first (default 0)"),
    "embedding": ("KIND", str, "kcenter / clusters: image-mean (default) | answer-hidden | tower-pooled"),
    "clusters": ("K", int, "clusters: k of k-means (default: round(sqrt(keep)))"),
}


def register(sub) -> None:
    p = sub.add_parser("select", help="choose a subset of a question set to train on (random, stratified, "
                                      "handpicked, loss, kcenter, clusters): LLaVA JSON + a selection.json manifest")
    p.add_argument("data", metavar="DATA", help="a LLaVA JSON file (+ --image-folder), mnist-vqa / fashion-vqa "
                                                "(training conversations), or mnist / fashion-mnist (training images)")
    p.add_argument("--method", required=True, help="random | stratified | handpicked | loss | kcenter | clusters")
    p.add_argument("--keep", required=True, help="N examples, or a FRACTION of the pool (0.1)")
    p.add_argument("--seed", type=int, default=0)
    for name, (metavar, kind, text) in PARAM_FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, metavar=metavar, type=kind, help=text)
    p.add_argument("--image-folder", help="LLaVA JSON: the folder its image paths are relative to")
    p.add_argument("--data-dir", help="generated pools: folder with the IDX files")
    p.add_argument("--offline", action="store_true", help="never download")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="generated pools: data settings, e.g. train_canvases=5000 (as `prepare --set`)")
    p.add_argument("--out", required=True, help="folder for train.json, selection.json, selection-timing.json")
    p.set_defaults(func=select)


def select(args) -> int:
    from ..config import SelectConfig, check_select
    from ..select.selection import pool_of, select_into
    from .common import data_section

    given = {k for k in PARAM_FLAGS if getattr(args, k) is not None}
    spec = SelectConfig(method=args.method, keep=parse_keep(args.keep), seed=args.seed,
                        **{k: getattr(args, k) for k in given})
    check_select(spec, "--", given)
    d = None
    if not args.data.endswith(".json"):
        flags = {"offline": str(args.offline).lower(), **({"data_dir": args.data_dir} if args.data_dir else {})}
        d = data_section(flags, args.set, "select")
    elif args.set:
        raise UserError("select --set is for the generated pools (mnist-vqa, mnist, ...); a LLaVA JSON file is "
                        "selected as written")
    pool = pool_of(args.data, args.image_folder, d)
    chosen = select_into(args.out, pool, spec, args.seed)
    print(f"{args.out}/selection.json: {args.method}, {chosen['keep']['count']} of {len(pool)} "
          f"(pool sha256 {pool.sha256[:12]}...)")
    folder = f"{args.out}/images" if pool.settings is not None else pool.image_folder
    print(f"{args.out}/train.json: the chosen samples" + (f", images in {folder}" if folder else ""))
    return 0


def parse_keep(text: str):
    """``--keep 1000`` (a count) or ``--keep 0.1`` (a fraction); the range is checked with the spec."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise UserError(f"--keep {text!r}: a count of examples or a fraction of the pool") from None
