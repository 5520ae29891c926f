"""Text-only data for ``text`` stages: the generated skills corpus and a user's corpora.

A text stage trains the LLM alone on text, for a run of its own (language pretraining, the result an
ordinary causal-LM checkpoint) or as stage 0 of a LLaVA run. Its text is one of:

- ``text-skills``: the registered generated corpus (``textskills.py``; sizes and seed in ``data.text_*``):
  multi-turn conversations to train on, and held-out single questions with candidate answers, scored per
  skill like the VQA question types (``valid``: ``heldout(text_valid, text_seed)``, ``test``: another seed);
- a file, by its suffix: ``.txt`` plain text (cut into ``data.text_window``-token windows, loss on every
  token: that needs the tokenizer, so it is read by ``train/source.py``), ``.jsonl`` a chat file in
  Mistral's fine-tuning format (``chatfile.py``), ``.json`` LLaVA JSON whose samples have no image; both
  conversation kinds train on every assistant turn.

Conversations become a :class:`QuestionSet` of text-only items (image -1), so training, answering and the
per-type metrics are the question sets' own. Not for: the generator itself (``textskills.py``).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .textskills import TEXT_DATASETS   # the registered text datasets (defined below vqa.py, which names them)

TEXT_SUFFIXES = {".txt": "plain", ".jsonl": "chat", ".json": "llava-json"}
TEST_SEED_OFFSET = 1          # the test questions' seed: text_seed + this (valid: text_seed)


def is_text_dataset(name: str) -> bool:
    return name in TEXT_DATASETS


def is_text_data(d) -> bool:
    """True if data config ``d`` is text only (``text-skills``, or ``data.format: text``)."""
    return d.format == "text" or (d.format == "idx" and is_text_dataset(d.dataset))


def text_kind(path: str, where: str = "text file") -> str:
    """``plain`` | ``chat`` | ``llava-json`` from a corpus file's suffix; another suffix is one line."""
    kind = TEXT_SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise UserError(f"{where} {path}: a text corpus is .txt (plain text), .jsonl (chat, Mistral's format) or "
                        ".json (LLaVA JSON without images)")
    return kind


def stage_text(d, stage_data: str | None) -> str | None:
    """What a text stage reads: ``text-skills``, a corpus file, or None when there is no text to train on.

    ``stage_data`` (the stage's own ``data``) wins; else the run's data if it is text."""
    if stage_data is not None:
        return stage_data
    if d.format == "text":
        return d.path
    return d.dataset if d.format == "idx" and is_text_dataset(d.dataset) else None


def check_stage_text(d, stage_data: str | None, where: str) -> None:
    """Refuse, in one line, a text stage with no text, or text of an unknown kind (files are read later)."""
    src = stage_text(d, stage_data)
    if src is None:
        raise UserError(f"config {where}: a text stage needs text, and {_describe(d)} has none; set "
                        "data.dataset: text-skills or data.format: text, or give the stage data: text-skills or "
                        "a .txt / .jsonl / .json file")
    if src in ("all", "captions", "questions"):
        raise UserError(f"config {where}: a text stage reads text-skills or a .txt / .jsonl / .json file, not "
                        f"{src!r} (that selects a question set's conversations)")
    if not is_text_dataset(src):
        text_kind(src, f"config {where}: data")


def _describe(d) -> str:
    return f"data.path {d.path}" if d.format == "llava-json" else f"data.dataset {d.dataset}"


def skills_set(d, split: str, conversations: bool):
    """A split of ``text-skills`` as a text-only question set: training conversations, or held-out questions."""
    from . import textskills
    from .questions import from_samples

    if conversations:
        samples = textskills.generate(d.text_samples, d.text_seed, d.text_turns, d.text_skills)
    else:
        n = {"train": d.text_valid, "valid": d.text_valid, "test": d.text_test}[split]
        seed = d.text_seed + (TEST_SEED_OFFSET if split == "test" else 0)
        samples = textskills.heldout(n, seed, d.text_skills)
    return from_samples(samples, f"text-skills-{split}")


def conversations_file(path: str, where: str = "text file"):
    """A chat JSONL or text-only LLaVA JSON file as a question set (every assistant turn is trained)."""
    from .questions import from_llava_json, from_samples

    kind = text_kind(path, where)
    if not Path(path).is_file():
        raise UserError(f"{where} {path}: file not found")
    if kind == "llava-json":
        from .llava_json import read_llava_json

        pictured = next((raw for raw in read_llava_json(path) if raw.get("image")), None)
        if pictured is not None:
            raise UserError(f"{path}: sample {str(pictured.get('id'))!r} has an image; a text stage trains on text "
                            "only (drop its image key, or train it in a vision stage)")
        return from_llava_json(path, None, Path(path).stem, in_memory=True)
    if kind == "chat":
        from ..chatfile import load_chat_file

        roles = {"user": "human", "assistant": "gpt", "system": "system"}
        samples = [{"id": f"{Path(path).stem}-{i}", "type": "conversation",
                    "conversations": [{"from": roles[m["role"]], "value": m["content"]} for m in s["messages"]]}
                   for i, s in enumerate(load_chat_file(path))]
        return from_samples(samples, Path(path).stem)
    raise UserError(f"{where} {path}: plain text has no conversations to ask questions about")


def plain_text(path: str, where: str = "text file") -> str:
    """A plain-text corpus, whole (``train/source.py`` cuts it into token windows)."""
    if not Path(path).is_file():
        raise UserError(f"{where} {path}: file not found")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{where} {path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not text.strip():
        raise UserError(f"{where} {path}: empty")
    return text


def corpus_texts(d, source: str, limit: int) -> list[str]:
    """Up to ``limit`` texts of a text source, for learning a tokenizer's merges: each conversation's turns,
    or the plain text's paragraphs; ``text-skills`` adds every word its generator can write
    (``textskills.vocabulary()``), so rare words still get merged."""
    if is_text_dataset(source):
        from . import textskills

        qs = skills_set(d, "train", True).subset(limit)
        return [_joined(it.turns) for it in qs.items] + [" ".join(textskills.vocabulary())] * VOCABULARY_REPEATS
    if text_kind(source) == "plain":
        paragraphs = [p for p in plain_text(source).split("\n\n") if p.strip()]
        return paragraphs[:limit]
    return [_joined(it.turns) for it in conversations_file(source).subset(limit).items]


VOCABULARY_REPEATS = 20       # the word list counts like 20 conversations: enough to merge each word's letters


def _joined(turns) -> str:
    return "\n".join(t for _, t in turns)
