"""A tokenizer made for ASCII art: byte-level-safe BPE trained on renderings, and token counting.

``train_ascii_tokenizer`` trains a BPE model with Hugging Face ``tokenizers`` on rendered
art (an ASCII image is mostly runs of the same character, which BPE turns into single
tokens), then adds SentencePiece-style byte fallback: every printable ASCII character and
newline is in the base alphabet, and any other character is encoded as its UTF-8 bytes
(``<0xNN>`` tokens) and decoded back, so ``decode(encode(text)) == text`` for every input and
nothing is mapped to ``<unk>``. The result is a ``PreTrainedTokenizerFast`` with the tiny
presets' chat template, so transformers, PEFT and the rest of the project use it unchanged.

``split`` chooses what one BPE "word" is: ``none`` - the whole text, so tokens may span line
breaks (most compression: blank margins become one token); ``rows`` - each line ending with
its newline, so no token crosses a row boundary; ``chunks`` - every ``chunk_size`` characters of
a row (the row's last chunk keeps its newline). With a vocabulary that holds the common
chunks, token i then always covers the same image region, like a ViT patch: free BPE loses
that alignment, and the tiny models learn measurably worse from it (README).

``extend_tokenizer`` adds the learned multi-character pieces to a checkpoint's tokenizer
(for LoRA runs on Mistral / LLaMA); ``backbones.py`` resizes the embeddings and initialises
the new rows from the mean of each piece's original sub-token embeddings.

``count_tokens`` measures any tokenizer by name (``char``, ``mistral-v1``, ``mistral-tekken``
from mistral-common, offline) or saved folder. Not for: choosing a backbone's tokenizer.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError, one_of
from .tokenizer import CHAR_ALPHABET, SPECIAL_TOKENS, TINY_CHAT_TEMPLATE

BYTE_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))
SPLITS = ("none", "rows", "chunks", "words")
# Smallest useful vocabulary: specials + base alphabet + byte fallback + at least one merge.
MIN_VOCAB = len(SPECIAL_TOKENS) + len(CHAR_ALPHABET) + len(BYTE_TOKENS) + 1
REFERENCE_TOKENIZERS = ("char", "mistral-v1", "mistral-tekken")
MARKER_FILE = "ascii_tokenizer.json"      # written beside the tokenizer files: how it was trained


def train_ascii_tokenizer(texts, vocab_size: int = 1024, split: str = "none", chunk_size: int = 2):
    """Train the ASCII BPE tokenizer on ``texts`` (renderings or whole prompts).

    Args:
        texts: iterable of strings to learn merges from (the training split only).
        vocab_size: largest vocabulary, including the 5 special tokens, the 96 base characters
            and the 256 byte-fallback tokens (smaller when the texts offer fewer merges, e.g.
            short chunks).
        split: ``none``, ``rows`` or ``chunks`` (see module docstring).
        chunk_size: characters per chunk when ``split="chunks"``.
    Returns:
        a left-padding ``PreTrainedTokenizerFast`` with the tiny chat template.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if split not in SPLITS:
        raise one_of("tokenizer split", split, SPLITS)
    if vocab_size < MIN_VOCAB:
        raise UserError(f"tokenizer vocab_size {vocab_size} is too small: the base alphabet and byte fallback "
                        f"alone take {MIN_VOCAB - 1} tokens")
    core = Tokenizer(models.BPE(unk_token="<unk>"))
    if split == "rows":
        core.pre_tokenizer = pre_tokenizers.Split(Regex("\n"), behavior="merged_with_previous")
    elif split == "chunks":
        if chunk_size < 1:
            raise UserError(f"tokenizer chunk_size must be >= 1, got {chunk_size}")
        core.pre_tokenizer = pre_tokenizers.Split(Regex(f"[^\n]{{1,{chunk_size}}}\n?|\n"), behavior="isolated")
    elif split == "words":           # question text: merges stay inside a word; digits and marks stand alone
        core.pre_tokenizer = pre_tokenizers.Split(Regex(r" ?[A-Za-z]+| ?[^A-Za-z]"), behavior="isolated")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(BYTE_TOKENS), special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=list(CHAR_ALPHABET), show_progress=False)
    core.train_from_iterator(texts, trainer)
    # Byte fallback is added after training so the 256 byte tokens stay ordinary vocabulary
    # entries (as special tokens they would be matched in the input text itself).
    spec = json.loads(core.to_str())
    vocab = spec["model"]["vocab"]
    for tok in BYTE_TOKENS:
        vocab.setdefault(tok, len(vocab))
    spec["model"]["byte_fallback"] = True
    core = Tokenizer.from_str(json.dumps(spec))
    core.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    return _wrap(core)


def _wrap(core):
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>", padding_side="left")
    tok.chat_template = TINY_CHAT_TEMPLATE
    return tok


def save_ascii_tokenizer(tok, out_dir: str | Path, info: dict) -> Path:
    """Save atomically, with ``info`` (how it was trained) beside the tokenizer files."""
    from ..io import atomic_dir, write_json

    with atomic_dir(out_dir) as tmp:
        tok.save_pretrained(tmp)
        write_json(tmp / MARKER_FILE, info)
    return Path(out_dir)


def load_ascii_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file():
        raise UserError(f"{path}: no tokenizer here (tokenizer.json missing); "
                        "make one with `mistral-vision tokenizer train`")
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    return tok


def learned_pieces(ascii_tok) -> list[str]:
    """The multi-character pieces the BPE learned, in merge order (most frequent first)."""
    vocab = ascii_tok.get_vocab()
    skip = set(SPECIAL_TOKENS) | set(BYTE_TOKENS)
    return [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if t not in skip and len(t) > 1]


def extend_tokenizer(base_tok, ascii_tok) -> list[str]:
    """Add the ASCII pieces to a checkpoint tokenizer in place; returns the pieces added.

    Pieces are added as non-normalized added tokens, which the tokenizer matches verbatim
    (leftmost-longest) before its own model runs, so art is cut into the learned pieces and
    any text between them is tokenized as before.
    """
    return add_verbatim_tokens(base_tok, learned_pieces(ascii_tok))


def add_verbatim_tokens(tok, texts) -> list[str]:
    """Add the ``texts`` ``tok`` lacks as non-normalized added tokens (in place); returns them.

    SentencePiece's dummy prefix is dropped first (see :func:`_drop_dummy_prefix`), so the
    text between added tokens keeps its exact spelling.
    """
    from tokenizers import AddedToken

    have = tok.get_vocab()
    new = [t for t in texts if t not in have]
    _drop_dummy_prefix(tok)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in new])
    return new


def _drop_dummy_prefix(tok) -> None:
    """Stop a SentencePiece-style tokenizer from prefixing "▁" to every text segment.

    Added tokens cut the text into segments, and Metaspace / Prepend("▁") treat each one
    as a new text: the art "%+" would become "% +". So the extended tokenizer never adds the
    dummy prefix (and its decoder no longer strips one); the template's first word changes
    from "▁[" to "[", which LoRA fine-tuning absorbs. Byte-level BPE (Tekken, LLaMA-3) is
    left untouched.
    """
    from tokenizers import Tokenizer

    spec = json.loads(tok.backend_tokenizer.to_str())

    def fix(node):
        if isinstance(node, dict):
            if node.get("type") == "Metaspace":
                node["prepend_scheme"], node["add_prefix_space"] = "never", False
            for key in ("normalizers", "decoders"):
                if isinstance(node.get(key), list):
                    node[key] = [n for n in node[key] if n.get("type") not in ("Prepend", "Strip")]
            for v in node.values():
                fix(v)
        elif isinstance(node, list):
            for v in node:
                fix(v)

    for part in ("normalizer", "pre_tokenizer", "decoder"):
        if spec.get(part) and spec[part].get("type") in ("Prepend", "Strip"):
            spec[part] = None
        fix(spec.get(part))
    tok._tokenizer = Tokenizer.from_str(json.dumps(spec))


# -- counting ---------------------------------------------------------------------------
def reference_counter(name: str):
    """A function texts -> token counts for ``name`` (reference id or a saved tokenizer folder)."""
    if name == "char":
        from .tokenizer import build_char_tokenizer

        return _hf_counter(build_char_tokenizer())
    if name in ("mistral-v1", "mistral-tekken"):
        try:
            from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
        except ImportError:
            raise UserError(f"tokenizer {name!r} needs mistral-common: pip install 'mistral-vision[mistral]'") from None
        try:
            mt = MistralTokenizer.v1() if name == "mistral-v1" else MistralTokenizer.v3(is_tekken=True)
        except Exception as e:   # sentencepiece missing surfaces as various errors across versions
            raise UserError(f"cannot load {name} from mistral-common ({str(e).splitlines()[0]}); "
                            "pip install 'mistral-vision[mistral]'") from None
        raw = mt.instruct_tokenizer.tokenizer
        return lambda texts: [len(raw.encode(t, bos=False, eos=False)) for t in texts]
    if Path(name).is_dir():
        return _hf_counter(load_ascii_tokenizer(name))
    raise UserError(f"unknown tokenizer {name!r}; use a folder made by `mistral-vision tokenizer train` or one of: "
                    + ", ".join(REFERENCE_TOKENIZERS))


def _hf_counter(tok):
    return lambda texts: [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]


def token_stats(counts, chars) -> dict:
    import numpy as np

    counts, chars = np.asarray(counts, dtype=float), np.asarray(chars, dtype=float)
    return {"images": int(counts.size), "chars_mean": float(chars.mean()), "tokens_mean": float(counts.mean()),
            "tokens_p95": float(np.percentile(counts, 95)), "tokens_max": int(counts.max()),
            "chars_per_token": float(chars.sum() / counts.sum())}


def check_round_trip(tok, texts) -> None:
    """Raise if any text does not decode back to itself (the lossless promise)."""
    ids = tok(list(texts), add_special_tokens=False)["input_ids"]
    for i, (t, row) in enumerate(zip(texts, ids)):
        back = tok.decode(row)
        if back != t:
            pos = next((k for k, (a, b) in enumerate(zip(t, back)) if a != b), min(len(t), len(back)))
            raise UserError(f"tokenizer round trip failed on text {i} at character {pos}")


# -- in a run ----------------------------------------------------------------------------
def training_texts(cfg, limit: int) -> list[str]:
    """User-turn texts (prompt template + art) of the first ``limit`` training images, unaugmented; for
    question sets, the first ``limit`` conversations' turns with the art in place of ``<image>``; for text
    data, its first ``limit`` texts (``data/textdata.py``)."""
    from ..data.run_data import is_question_set, label_names_for
    from ..data.textdata import corpus_texts, is_text_data, stage_text
    from ..prompts import PromptFormat

    d, a = cfg.data, cfg.ascii
    if is_text_data(d):                   # a text run: its corpus (+ text-skills' word list)
        return corpus_texts(d, stage_text(d, None), limit)
    if is_question_set(d):
        return _conversation_texts(cfg, limit)
    arts = render_split(d.dataset, "train", a.width, a.height, a.crop, a.ramp, min(limit, d.train_limit or limit),
                        d.data_dir, d.offline, d.valid_size, d.split_seed, a.invert)
    fmt, names = PromptFormat(cfg.prompt.template, cfg.prompt.system), label_names_for(d)
    return [fmt.messages(art, names, d.dataset, a.width, a.height)[-1]["content"] for art in arts]


def _conversation_texts(cfg, limit: int) -> list[str]:
    import numpy as np

    from ..ascii.render import render_ascii
    from ..data.questions import IMAGE
    from ..data.run_data import load_questions

    a = cfg.ascii
    # The whole training pool, also under data.select: the subset decides which examples train, not the
    # vocabulary, so runs on different selections of one pool share one tokenizer (as they would share a
    # pretrained LLM's) and a selection study compares examples alone.
    qs = load_questions(cfg.data, "train", conversations=True).subset(limit)
    if cfg.route != "ascii":             # the image is the tower's: the text alone, <image> stays a special token
        return ["\n".join(t.replace(IMAGE, "") for _, t in it.turns) for it in qs.items]
    rows = sorted({it.image for it in qs.items if it.image >= 0})
    arts = dict(zip(rows, render_ascii(np.stack([qs.images[r] for r in rows]), a.width, a.height, a.ramp, a.invert,
                                       a.crop))) if rows else {}
    return ["\n".join(t.replace(IMAGE, arts.get(it.image, "")) for _, t in it.turns) for it in qs.items]


def run_tokenizer(cfg, spec, run_dir: Path, log=print):
    """The tokenizer a run trains with.

    ``default``: the backbone's own (char-level for tiny presets). ``ascii-bpe``: the ASCII BPE
    kept in ``run_dir/tokenizer`` (trained there on first use, or copied from
    ``tokenizer.path``), used alone by tiny presets or merged into a checkpoint's tokenizer.
    ``label_tokens`` adds the class names as single tokens on top of either.
    """
    from ..data.run_data import label_names_for

    tok = _run_tokenizer(cfg, spec, run_dir, log)
    from .chat_templates import set_chat_template

    set_chat_template(tok, cfg.prompt.chat_template)
    if cfg.tokenizer.label_tokens:
        added = add_label_tokens(tok, label_names_for(cfg.data))
        if added:
            log(f"      added {len(added)} class names as single tokens")
    return tok


def add_label_tokens(tok, names) -> list[str]:
    """Add each class name as one verbatim added token (in place); returns the names added.

    Lossless like every added token: wherever the name occurs (the answer, a prompt that
    lists the classes) it becomes that one token and decodes back to itself.
    """
    return add_verbatim_tokens(tok, names)


def _run_tokenizer(cfg, spec, run_dir: Path, log):
    from .backbones import load_tokenizer

    if cfg.tokenizer.kind == "default":
        return load_tokenizer(spec)
    return learned_tokenizer(cfg, spec, run_dir, log)


def learned_tokenizer(cfg, spec, run_dir: Path, log):
    """The BPE learned from the run's training texts (or copied from ``tokenizer.path``), kept in
    ``run_dir/tokenizer``: alone for tiny presets, merged into a checkpoint's tokenizer otherwise."""
    from .backbones import load_tokenizer

    tc = cfg.tokenizer
    keep = Path(run_dir) / "tokenizer"
    if not (keep / "tokenizer.json").is_file():
        if tc.path:
            ascii_tok, info = load_ascii_tokenizer(tc.path), {"copied_from": str(Path(tc.path).resolve())}
        else:
            texts = training_texts(cfg, tc.train_images)
            log(f"      learning an ASCII BPE tokenizer (vocab {tc.vocab_size}, split {tc.split}) "
                f"from {len(texts)} training prompts")
            ascii_tok = train_ascii_tokenizer(texts, tc.vocab_size, tc.split, tc.chunk_size)
            info = {"vocab_size": tc.vocab_size, "learned_size": len(ascii_tok), "split": tc.split,
                    "chunk_size": tc.chunk_size, "train_texts": len(texts)}
        save_ascii_tokenizer(ascii_tok, keep, info)
    ascii_tok = load_ascii_tokenizer(keep)
    if spec.is_tiny:
        return ascii_tok
    tok = load_tokenizer(spec)
    added = extend_tokenizer(tok, ascii_tok)
    log(f"      extended {spec.checkpoint}'s tokenizer with {len(added)} ASCII pieces")
    return tok


# -- the `tokenizer` commands ------------------------------------------------------------
def render_split(dataset: str, split: str, width: int, height: int, crop: int = 0, ramp: str | None = None,
                 limit: int | None = None, data_dir=None, offline: bool = False, valid_size: int = 5000,
                 split_seed: int = 0, invert: bool = False) -> list[str]:
    """The first ``limit`` images of a dataset split as ASCII art."""
    from ..ascii.render import DEFAULT_RAMP, render_ascii
    from ..data.datasets import load_split

    data = load_split(dataset, split, data_dir, offline, valid_size, split_seed).subset(limit)
    return render_ascii(data.images, width, height, ramp or DEFAULT_RAMP, invert, crop)


def train_from_dataset(out: str | Path, dataset: str, width: int, height: int, vocab_size: int, split: str = "none",
                       chunk_size: int = 2, crop: int = 0, ramp: str | None = None, train_images: int = 20000,
                       data_dir=None, offline: bool = False, valid_size: int = 5000, split_seed: int = 0) -> dict:
    """Learn the tokenizer from the training split's art and save it; returns its stats there."""
    arts = render_split(dataset, "train", width, height, crop, ramp, train_images, data_dir, offline, valid_size,
                        split_seed)
    tok = train_ascii_tokenizer(arts, vocab_size, split, chunk_size)
    check_round_trip(tok, arts)
    info = {"dataset": dataset, "width": width, "height": height, "crop": crop, "ramp": ramp,
            "vocab_size": vocab_size, "learned_size": len(tok), "split": split, "chunk_size": chunk_size,
            "train_texts": len(arts), "valid_size": valid_size, "split_seed": split_seed}
    save_ascii_tokenizer(tok, out, info)
    return {"vocab": len(tok), **token_stats(_hf_counter(tok)(arts), [len(a) for a in arts])}


def compare(names, arts) -> list[dict]:
    """Token statistics of each tokenizer on the same renderings (rows for a table)."""
    chars = [len(a) for a in arts]
    return [{"tokenizer": n, **token_stats(reference_counter(n)(arts), chars)} for n in names]
