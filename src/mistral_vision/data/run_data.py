"""The run's data config as question data: which split to load (a VQA set, LLaVA JSON, text, a selection
of one), whether it is a question set at all, its class names and image side.

Above ``questions.py`` (the question set itself), ``selection.py`` and ``textdata.py``, which build on it:
this module dispatches between them, so none of them needs to import it back. Not for: reading or drawing
the data (those modules).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .questions import QuestionSet, from_llava_json, from_vqa, vqa_json_samples, vqa_split


def load_questions(d, split: str, conversations: bool = False, path: str | None = None,
                   selection=None) -> QuestionSet:
    """A split of the run's question set (data config ``d``): training conversations or evaluation questions.

    ``path``: a LLaVA JSON file instead (a stage's own data, or ``evaluate --questions``), or a selection.json
    of one (its chosen samples). ``selection``: a selection.json of the run's training pool (``data.select``,
    ``data/selection.py``): only its chosen items, refused if it was made from other data."""
    from .selection import file_sha256, generated_sha256, image_name, is_manifest, manifest_questions, select_questions
    from .textdata import conversations_file, is_text_dataset, skills_set
    from .vqa import is_vqa

    if path is None and d.format == "idx" and is_vqa(d.dataset):
        sp = vqa_split(d, split)
        qs = from_vqa(sp, conversations)
        if selection is not None:
            sha = generated_sha256(vqa_json_samples(sp, True, image_name), sp.images)
            qs = select_questions(qs, selection, sha, f"the {d.dataset} training conversations of this config")
    elif path is None and d.format == "idx" and is_text_dataset(d.dataset):
        qs = skills_set(d, split, conversations)
    elif path is None and d.format == "text" and split == "train":
        qs = conversations_file(d.path, "data.path")
    elif path is not None and is_manifest(path):
        qs = manifest_questions(path, d.image_folder)
    else:
        own_path = path is None
        if path is None:
            path = {"train": d.path, "valid": d.valid_path, "test": d.test_path}[split]
        if path is None:
            raise UserError(f"no {split} file: set data.{'path' if split == 'train' else split + '_path'} "
                            "to a LLaVA JSON file")
        folder = {"valid": d.valid_image_folder, "test": d.test_image_folder}.get(split) if own_path else None
        qs = from_llava_json(path, folder or d.image_folder, f"{Path(path).stem}")
        if selection is not None and own_path:
            qs = select_questions(qs, selection, file_sha256(path), str(path))
    limit = {"train": d.train_limit, "valid": d.valid_limit, "test": d.test_limit}.get(split)
    return qs.subset(limit)


def is_question_set(d) -> bool:
    """True if data config ``d`` is a question set (a VQA set, LLaVA JSON, or text whose held-out questions are
    scored), not a classification dataset."""
    from .textdata import is_text_data
    from .vqa import is_vqa

    return d.format in ("llava-json", "text") or is_vqa(d.dataset) or is_text_data(d)


def label_names_for(d) -> tuple[str, ...]:
    """Class names of the data: a classification dataset's, a VQA set's base dataset's, none for LLaVA JSON."""
    from .datasets import get_dataset
    from .textdata import is_text_data
    from .vqa import get_vqa, is_vqa

    if d.format == "llava-json" or is_text_data(d):
        return ()
    return get_dataset(get_vqa(d.dataset).base if is_vqa(d.dataset) else d.dataset).label_names


def image_side(d) -> int | None:
    """The side of the square images the data's runs were trained on: 28 for a classification dataset,
    the canvas for a VQA set; None for LLaVA JSON, whose images keep their own size (the task fits them)."""
    from .images import DIGIT_SIDE
    from .textdata import is_text_data
    from .vqa import CELL, is_vqa

    if d.format == "llava-json" or is_text_data(d):
        return None
    return d.grid * CELL if is_vqa(d.dataset) else DIGIT_SIDE
