"""``mistral-vision tokenizer train|stats``: learn an ASCII-art BPE tokenizer, or count tokens per image."""
from __future__ import annotations

from .common import add_ascii_args, add_data_args, add_split_args


def register(sub) -> None:
    from ..config import TokenizerConfig

    tk = sub.add_parser("tokenizer", help="train / measure the ASCII-art tokenizer")
    tsub = tk.add_subparsers(dest="action", required=True)
    for name, text in (("train", "learn an ASCII BPE tokenizer from a dataset's training art"),
                       ("stats", "tokens per image of one or more tokenizers on the same art")):
        p = tsub.add_parser(name, help=text)
        add_data_args(p, dataset_required=True)
        add_ascii_args(p, 28)
        add_split_args(p)
    p = tsub.choices["train"]
    p.add_argument("--vocab-size", type=int, default=TokenizerConfig().vocab_size,   # one source of truth
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
    tk.set_defaults(func=tokenizer)


def tokenizer(args) -> int:
    from ..models import ascii_tokenizer as at

    w, h = args.width or args.ascii_size, args.height or args.ascii_size
    if args.action == "train":
        st = at.train_from_dataset(args.out, args.dataset, w, h, args.vocab_size, args.split, args.chunk_size,
                                   args.crop, args.ramp, args.train_images, args.data_dir, args.offline,
                                   args.valid_size, args.split_seed)
        print(f"{args.out}: {st['vocab']} tokens; on its {st['images']} training images "
              f"{st['tokens_mean']:.1f} tokens per image for {st['chars_mean']:.0f} characters (lossless)")
        return 0
    arts = at.render_split(args.dataset, args.split, w, h, args.crop, args.ramp, args.limit, args.data_dir,
                           args.offline, args.valid_size, args.split_seed)
    rows = at.compare(args.tokenizer or list(at.REFERENCE_TOKENIZERS), arts)
    print(f"{args.dataset} {args.split} ({len(arts)} images) as {w}x{h} ASCII art, {rows[0]['chars_mean']:.0f} "
          "characters per image")
    print(f"{'tokenizer':<28} {'tokens/image':>12} {'p95':>6} {'chars/token':>11}")
    for r in rows:
        print(f"{r['tokenizer']:<28} {r['tokens_mean']:>12.1f} {r['tokens_p95']:>6.0f} {r['chars_per_token']:>11.2f}")
    return 0
