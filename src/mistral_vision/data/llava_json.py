"""Visual instruction data in LLaVA's conversation JSON: read, validate, load images, write.

The file is one JSON list of samples ``{"id", "image", "conversations": [{"from": "human",
"value": "<image>\\n…"}, {"from": "gpt", "value": "…"}, …]}``. ``image`` is a path relative
to an image folder (a list of paths is counted too, but only one image per sample is
supported); a sample without ``image`` is text-only; any other keys (e.g. our ``"type"``,
``"candidates"``) are kept untouched in :attr:`Sample.extra` and written back.
:func:`validate_llava_json` lists every problem of every sample (for ``mistral-vision
validate``); :func:`load_llava_json` refuses a file with any problem in one error line.
Sample indices in messages are 0-based positions in the JSON list. Not for: prompt
templates or tokenisation (``prompts.py``), ScienceQA answers (``sqa.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io import write_text

IMAGE_PLACEHOLDER = "<image>"
ROLES = ("human", "gpt")
_OWN_KEYS = ("id", "image", "conversations")
# Pillow's I;16 -> L conversion clips everything above 255 to white; we scale instead.
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_GRAY_MODES = ("L", "1", "LA", "I", "F") + _SIXTEEN_BIT_MODES


def question_text(turns) -> str:
    """The last human turn of (role, text) turns without its ``<image>`` placeholder and that line break
    (LLaVA's converters put it first or last)."""
    text = next(t for r, t in reversed(turns) if r == "human")
    for pattern in (IMAGE_PLACEHOLDER + "\n", "\n" + IMAGE_PLACEHOLDER, IMAGE_PLACEHOLDER):
        text = text.replace(pattern, "")
    return text.strip()


@dataclass
class Sample:
    """One validated sample; ``turns`` are (role, text) with role "human" or "gpt"
    (and "system" only as the first turn)."""

    index: int
    id: str
    image: str | None
    turns: list[tuple[str, str]]
    extra: dict = field(default_factory=dict)

    @property
    def question(self) -> str:
        """The last human turn without its ``<image>`` placeholder (and that line break)."""
        return question_text(self.turns)

    @property
    def answer(self) -> str:
        """The last gpt turn."""
        return next(t for r, t in reversed(self.turns) if r == "gpt")

    def to_json(self) -> dict:
        out: dict = {"id": self.id}
        if self.image is not None:
            out["image"] = self.image
        out["conversations"] = [{"from": r, "value": t} for r, t in self.turns]
        out.update(self.extra)
        return out


def read_llava_json(path: str | Path) -> list[dict]:
    """The raw samples of a LLaVA JSON file; UserError if it is not a JSON list of objects."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        hint = ("; it looks like JSON Lines, but LLaVA data is one JSON list"
                if e.msg == "Extra data" and e.colno == 1 else "")
        raise UserError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}{hint}") from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of samples, found a JSON {_json_type(data)}")
    for i, raw in enumerate(data):
        if not isinstance(raw, dict):
            raise UserError(f"{path}: sample {i} is a JSON {_json_type(raw)}, not an object")
    return data


def sample_problems(raw: dict, index: int, image_folder: Path | None, check_images: bool) -> list[str]:
    """Every problem of one raw sample, each a message starting ``sample {index} (id "…"):``.

    Image files are opened (Pillow ``verify()``) only if ``check_images`` and ``image_folder``
    are given; with ``check_images`` and no folder, a sample with an image is a problem.
    """
    if not isinstance(raw, dict):
        return [f"sample {index}: is a JSON {_json_type(raw)}, not an object"]
    problems = _structure_problems(raw)
    images = _images_of(raw)
    if images is None:
        problems.append('"image" must be a non-empty path string (or a list of them)')
    elif len(images) > 1:
        problems.append(f"has {len(images)} images; only one image per sample is supported")
    elif images and check_images:
        if image_folder is None:
            problems.append("has an image but no --image-folder given")
        elif problem := _image_file_problem(Path(image_folder), images[0]):
            problems.append(problem)
    where = _where(raw, index)
    return [f"{where}: {p}" for p in problems]


def validate_llava_json(path: str | Path, image_folder: str | Path | None = None,
                        check_images: bool = True) -> tuple[int, list[str]]:
    """(number of samples, every problem of every sample, in file order).

    Problems that every image shares are said once, not once per sample: no ``image_folder``
    for a file with images, or a folder one level above the one the paths are relative to."""
    raws = read_llava_json(path)
    folder = _image_folder(image_folder)
    by_sample = _problems_by_sample(raws, folder, check_images and folder is not None)
    imaged = {i: _images_of(raw)[0] for i, raw in enumerate(raws) if isinstance(raw, dict) and _images_of(raw)}
    shared = []
    if check_images and imaged and folder is None:
        shared.append(f"{len(imaged)} of {len(raws)} samples have an image but no --image-folder was given: "
                      "pass --image-folder DIR, the folder their image paths are relative to")
    elif check_images and folder is not None:
        missing = {i: rel for i, rel in imaged.items() if not (folder / rel).is_file()}
        sub = _subfolder_holding(folder, list(missing.values()))
        if sub is not None:
            for i in missing:
                by_sample[i] = [p for p in by_sample[i] if not p.endswith(f"not found in {folder}")]
            shared.append(f"{len(missing)} images not found in {folder}, but all are in {sub}: "
                          f"pass --image-folder {sub}")
    return len(raws), [p for ps in by_sample.values() for p in ps] + shared


def _subfolder_holding(folder: Path, rels: list[str]) -> Path | None:
    """The subfolder of ``folder`` (``images/``, ``train/``...) that holds every one of ``rels``, if any."""
    if not rels:
        return None
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if all((sub / rel).is_file() for rel in rels):
            return sub
    return None


def load_llava_json(path: str | Path, image_folder: str | Path | None = None,
                    check_images: bool = True) -> list[Sample]:
    """All samples of a LLaVA JSON file, or one UserError naming the first bad sample."""
    raws = read_llava_json(path)
    folder = _image_folder(image_folder)
    by_sample = _problems_by_sample(raws, folder, check_images)
    if by_sample:
        index, first = next(iter(by_sample.items()))
        cut = len(_where(raws[index], index)) + 2
        head = first[0] + "".join("; " + p[cut:] for p in first[1:])
        more = len(by_sample) - 1
        rest = f" ({more} more bad sample{'s' if more != 1 else ''})" if more else ""
        cmd = f"mistral-vision validate {path} --image-folder {image_folder if folder else 'DIR'}"
        raise UserError(f"{path}: {head}{rest}; run `{cmd}` for all of them")
    return [_to_sample(raw, i) for i, raw in enumerate(raws)]


def load_image(image_folder: str | Path, rel: str) -> np.ndarray:
    """Decode ``image_folder/rel`` to uint8: (H, W) for grayscale files, (H, W, 3) RGB otherwise
    (alpha dropped). No EXIF rotation, like LLaVA's ``Image.open(...).convert("RGB")``."""
    from PIL import Image

    path = Path(image_folder) / rel
    if not path.is_file():
        raise UserError(f'image "{rel}" not found in {image_folder}')
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in _SIXTEEN_BIT_MODES:
                return (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
            return np.asarray(im.convert("L" if im.mode in _GRAY_MODES else "RGB"), dtype=np.uint8)
    except Exception as e:  # Pillow raises many types for broken files
        raise UserError(f"{path}: cannot decode image ({e}); use PNG or JPEG files") from None


def write_llava_json(path: str | Path, samples: list[Sample | dict]) -> None:
    """Write samples as a LLaVA JSON list, atomically."""
    records = [s.to_json() if isinstance(s, Sample) else s for s in samples]
    write_text(path, json.dumps(records, indent=2, ensure_ascii=False) + "\n")


# --- helpers ---------------------------------------------------------------------------------

def _where(raw, index: int) -> str:
    return f'sample {index} (id "{raw["id"]}")' if isinstance(raw, dict) and "id" in raw else f"sample {index}"


def _json_type(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean",
            int: "number", float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _image_folder(image_folder) -> Path | None:
    if image_folder is None:
        return None
    folder = Path(image_folder)
    if not folder.is_dir():
        raise UserError(f"image folder {folder} does not exist")
    return folder


def _problems_by_sample(raws: list, folder: Path | None, check_images: bool) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    seen: dict[str, int] = {}
    for i, raw in enumerate(raws):
        problems = sample_problems(raw, i, folder, check_images)
        sid = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(sid, (str, int)) and not isinstance(sid, bool):
            if str(sid) in seen:  # predictions are keyed by id, so ids must be unique
                problems.append(f"{_where(raw, i)}: id already used by sample {seen[str(sid)]}")
            seen.setdefault(str(sid), i)
        if problems:
            out[i] = problems
    return out


def _structure_problems(raw: dict) -> list[str]:
    problems = []
    sid = raw.get("id")
    if "id" in raw and (not isinstance(sid, (str, int)) or isinstance(sid, bool)):
        problems.append(f"id must be a string, found a JSON {_json_type(sid)}")
    conv = raw.get("conversations")
    if conv is None:
        return problems + ['has no "conversations"']
    if not isinstance(conv, list):
        return problems + [f'"conversations" must be a list, found a JSON {_json_type(conv)}']
    if not conv:
        return problems + ['"conversations" is empty']
    roles: list[str | None] = []
    for n, turn in enumerate(conv, 1):
        if not (isinstance(turn, dict) and isinstance(turn.get("from"), str) and isinstance(turn.get("value"), str)):
            problems.append(f'conversation turn {n} is not {{"from": "...", "value": "..."}} with string values')
            roles.append(None)
            continue
        role, text = turn["from"], turn["value"]
        if role not in ROLES and not (role == "system" and n == 1):
            problems.append(f'conversation turn {n} has role "{role}"; expected "human" or "gpt" '
                            f'("system" only as turn 1)')
            roles.append(None)
            continue
        roles.append(role)
        if not text.strip():
            problems.append(f'conversation turn {n} ("{role}") is empty')
        if role == "gpt" and IMAGE_PLACEHOLDER in text:
            problems.append(f'conversation turn {n} ("gpt") contains "{IMAGE_PLACEHOLDER}"; '
                            f"images go in human turns only")
    if None not in roles:
        problems += _order_problems(roles)
    images = _images_of(raw)
    if images is not None:
        n_placeholders = sum(t["value"].count(IMAGE_PLACEHOLDER) for t, r in zip(conv, roles) if r == "human")
        if n_placeholders != len(images):
            problems.append(f'has {len(images)} image{"" if len(images) == 1 else "s"} but {n_placeholders} '
                            f'"{IMAGE_PLACEHOLDER}" placeholder{"" if n_placeholders == 1 else "s"} in its human turns')
    return problems


def _order_problems(roles: list[str]) -> list[str]:
    """Human first, then alternating, ending with gpt (after an optional first system turn).
    Only the first misplaced turn is reported: one missing turn shifts all the others."""
    start = 1 if roles[0] == "system" else 0
    if start == len(roles):
        return ["has only a system turn; it needs human and gpt turns"]
    for n, role in enumerate(roles[start:]):
        expected = ROLES[n % 2]
        if role != expected:
            return [f'conversation turn {start + n + 1} is "{role}" where "{expected}" was expected']
    if roles[-1] != "gpt":
        return ['conversation ends with a "human" turn; the last turn must be "gpt" (the answer)']
    return []


def _images_of(raw: dict) -> list[str] | None:
    """Image paths of a raw sample (a string is one image, a list several); None if malformed."""
    image = raw.get("image")
    if image is None:
        return []
    images = [image] if isinstance(image, str) else image
    if not isinstance(images, list) or not all(isinstance(p, str) and p.strip() for p in images):
        return None
    return images


def _image_file_problem(folder: Path, rel: str) -> str | None:
    from PIL import Image

    path = folder / rel
    if not path.is_file():
        return f'image "{rel}" not found in {folder}'
    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as e:  # Pillow raises many types for broken files
        return f'image "{rel}" cannot be decoded ({e})'
    return None


def _to_sample(raw: dict, index: int) -> Sample:
    images = _images_of(raw)
    return Sample(index=index, id=str(raw.get("id", index)), image=images[0] if images else None,
                  turns=[(t["from"], t["value"]) for t in raw["conversations"]],
                  extra={k: v for k, v in raw.items() if k not in _OWN_KEYS})
