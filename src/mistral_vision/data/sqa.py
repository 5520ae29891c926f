"""ScienceQA-style multiple choice, parsed exactly as LLaVA does it.

Mirrors LLaVA's ``scripts/convert_sqa_to_llava*.py`` (how questions and answers are written)
and ``llava/eval/eval_science_qa.py`` (how a model's reply becomes a letter). The data comes
from LLaVA's converter, run in a LLaVA checkout (docs/ScienceQA.md, scripts/v1_5/eval/sqa.sh):

    python scripts/convert_sqa_to_llava.py convert_to_llava \\
        --base-dir /path/to/ScienceQA/data/scienceqa --prompt-format "QCM-LEA" --split train
    python scripts/convert_sqa_to_llava.py convert_to_llava \\
        --base-dir /path/to/ScienceQA/data/scienceqa --prompt-format "CQM-A" --split test

which write ``llava_{split}_{format}.json`` into ``--base-dir`` (``llava_train_QCM-LEA.json``,
``llava_test_CQM-A.json``). Image paths are ``{problem id}/image.png``, relative to the image
folder ``data/scienceqa/images/{split}`` of the ScienceQA repo. LLaVA scores a reply as wrong
(not FAILED) when its letter is beyond the question's options, counts a missing reply as
FAILED, and computes IMG accuracy over the questions whose prompt has ``<image>``.
Not for: reading the JSON file (``llava_json.py``) or running the model. It sits in ``data/`` because
answering (``infer/``) and scoring (``eval/``) both use it.
"""
from __future__ import annotations

import re

from ..errors import UserError

# LLaVA's ``--options`` default: ScienceQA questions have at most five choices.
LETTERS = "ABCDE"
# What ``model_vqa_science.py --single-pred-prompt`` appends to each question.
SINGLE_PRED_PROMPT = "Answer with the option's letter from the given choices directly."
_ASKS_FOR_LETTER = "Answer with the option's letter"
# Unescaped "." as in LLaVA: any character after the letter, so "The answer is Blue." gives "B".
_LLAVA_ANSWER = re.compile(r"The answer is ([A-Z]).")
_TRUTH_ANSWER = re.compile(r"The answer is ([A-Z])\.")
_LEPA_ANSWER = re.compile(r"ANSWER: ([A-Z])\.?\s*$")
# "(A) " at the start of the text or after whitespace, as get_choice_text writes it.
_OPTION_MARK = re.compile(r"(?<!\S)\(([A-Z])\)[ \t]")


def parse_options(question: str) -> list[tuple[str, str]]:
    """The lettered options ``[("A", text), ("B", text), …]`` of a question, in order.

    Reads LLaVA's ``Options: (A) x (B) y`` (one line) and one option per line. Scanning starts
    after ``Options:`` when present; the letters must run A, B, C, … (a stray ``(C)`` out of
    sequence stays part of an option's text) and an option ends at a line break. The last
    ``(A)`` that starts two or more options wins, so an ``(A)`` mentioned in the context before
    the options is skipped. Fewer than two options is not a multiple-choice question: [].
    """
    head = question.find("Options:")
    all_marks = list(_OPTION_MARK.finditer(question, head + len("Options:") if head >= 0 else 0))
    for first in reversed([i for i, m in enumerate(all_marks) if m.group(1) == "A"]):
        marks = []
        for m in all_marks[first:]:
            if m.group(1) == chr(ord("A") + len(marks)):
                marks.append(m)
        if len(marks) >= 2:
            ends = [m.start() for m in marks[1:]] + [len(question)]
            return [(m.group(1), question[m.end():end].split("\n", 1)[0].strip()) for m, end in zip(marks, ends)]
    return []


def expects_letter(question: str) -> bool:
    """True if the question asks for an option's letter or lists lettered options."""
    return _ASKS_FOR_LETTER in question or bool(parse_options(question))


def check_options(question: str, index: int, sample_id: str) -> None:
    """UserError if the question asks for an option's letter but lists no ``(A) …`` options."""
    if _ASKS_FOR_LETTER in question and not parse_options(question):
        raise UserError(f'sample {index} (id "{sample_id}"): asks for an option\'s letter '
                        f"but has no options like '(A) …'")


def parse_answer(text: str, letters: str = LETTERS) -> str:
    """A model's reply -> a letter, or "FAILED"; LLaVA's ``eval_science_qa.py`` step by step.

    1. the whole reply is one of ``letters`` (case-sensitive: "b" fails);
    2. else its first character is one of ``letters`` followed by ". " — a dot AND a space,
       so "B." alone or "B.x" fail;
    3. else ``re.findall(r"The answer is ([A-Z]).")`` has exactly ONE match: that letter, even
       one outside ``letters`` (the "." is unescaped, so "The answer is Blue." gives "B", and
       "The answer is B" at the very end gives nothing); two matches fail;
    4. else "FAILED".
    The reply is stripped first, as ``model_vqa_science.py`` strips outputs before saving them.
    Pass all of LLaVA's LETTERS (not just this question's) to reproduce its numbers: a letter
    beyond the question's options is then scored wrong, not FAILED.
    """
    text = text.strip()
    if len(text) == 1 and text in letters:
        return text
    if len(text) >= 3 and text[0] in letters and text[1:3] == ". ":
        return text[0]
    found = _LLAVA_ANSWER.findall(text)
    return found[0] if len(found) == 1 else "FAILED"


def truth_letter(answer_text: str, letters: str = LETTERS) -> str | None:
    """The letter of a ground-truth gpt turn, or None if there is none.

    Accepts "B", "B. text", LLaVA's "… The answer is B." (formats *-A and *-LEA, where the
    lecture and solution come first; the last such sentence wins) and "… ANSWER: B." (*-LEPA).
    """
    text = answer_text.strip()
    if len(text) == 1:
        letter = text
    elif len(text) >= 2 and text[1] == "." and (len(text) == 2 or text[2].isspace()):
        letter = text[0]
    elif found := _TRUTH_ANSWER.findall(text):
        letter = found[-1]
    elif m := _LEPA_ANSWER.search(text):
        letter = m.group(1)
    else:
        return None
    return letter if letter in letters and letter.isupper() else None
