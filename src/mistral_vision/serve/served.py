"""A run loaded once for the web demo: read a picture, label-score it, answer its questions, chat about it.

The page (``app.py``) calls these methods; nothing here knows Gradio. Everything reuses the
inference library, so the page shows the numbers the commands give: ``load_for_inference``
loads the model, ``LabelScorer`` with the run's test-time views gives the class probabilities
``predict`` writes, ``QuestionAnswerer``'s candidate scorers answer a question set's questions as
``evaluate`` does, and ``generate_reply`` (``infer/chat.py``) writes free answers, greedy at
temperature 0 as ``chat`` does. One lock serialises the model: the page may run a prediction
and a chat turn at the same time. Not for: the page's layout and events (``app.py``), or
prediction files (``predict.py``).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..tasks.base import Seen

EXAMPLE_IMAGES = 8           # example pictures offered under the upload box


@dataclass(frozen=True)
class ExampleQuestion:
    """A question the run was trained to answer: its type, its text, and its candidate answers (None: free-form)."""

    type: str
    text: str
    candidates: tuple[str, ...] | None = None


@dataclass
class Reading:
    """What the model made of one picture: probabilities of each class or candidate answer (None when the
    answer was generated), the answer, and what the model read (ASCII art, or the tower's input)."""

    probs: dict[str, float] | None
    answer: str
    seen: Seen


class ServedRun:
    """A run's model, task and question types, loaded once for the page's requests."""

    def __init__(self, run_dir: str | Path):
        from ..config import load_run_config
        from ..data.augment import tta_views
        from ..data.run_data import image_side, is_question_set
        from ..infer.loading import load_for_inference
        from ..infer.questions import QuestionAnswerer

        self.run_dir = Path(run_dir)
        self.cfg = load_run_config(run_dir)
        self.loaded = load_for_inference(self.cfg, run_dir)
        self.task = self.loaded.task
        self.asks_questions = is_question_set(self.cfg.data)
        self.side = image_side(self.cfg.data)            # the pictures' side the run was trained on (None: own size)
        self.views = tta_views(self.cfg.eval.tta)         # as `predict` and `evaluate` score
        self.answerer = QuestionAnswerer(self.loaded.model, self.task, self.cfg.eval.score_eos)
        self._class_scorer = None
        self._example_files = None
        self._lock = threading.Lock()
        self.questions = self._example_questions()

    @property
    def name(self) -> str:
        return self.run_dir.name

    # -- pictures ----------------------------------------------------------------------------
    def read_image(self, path: str | Path) -> np.ndarray:
        """An uploaded file as the run takes pictures (``predict``'s decoder); a bad file is a UserError
        naming the file as the user called it, not the server's temporary copy."""
        from ..data.images import load_image

        path = Path(path)
        try:
            return load_image(path, self.side, invert="auto")
        except UserError as e:
            raise UserError(str(e).replace(str(path), path.name)) from None

    def read_drawing(self, picture: np.ndarray) -> np.ndarray:
        """A drawn picture (dark ink on a light canvas, any channels) through the same decoder as files."""
        import tempfile

        from PIL import Image

        picture = np.asarray(picture)
        if picture.ndim == 3 and picture.shape[2] == 4:       # flatten transparency on white, as paper
            alpha = picture[..., 3:].astype(np.float32) / 255
            picture = (picture[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
        gray = np.asarray(Image.fromarray(picture.astype(np.uint8)).convert("L"))
        if gray.min() > 200:
            raise UserError("the drawing is empty: draw a digit or item first")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "drawing.png"
            Image.fromarray(gray).save(path)
            return self.read_image(path)

    # -- reading one picture -----------------------------------------------------------------
    def read(self, picture: np.ndarray, question: str | None = None) -> Reading:
        """Classify ``picture`` (classification runs) or answer ``question`` about it (question sets)."""
        with self._lock:
            seen = self.task.seen(picture[None])[0]
            if not self.asks_questions:
                probs = self._class_probs(picture)
            else:
                if not (question or "").strip():
                    raise UserError("choose or type a question about the picture first")
                example = next((q for q in self.questions if q.text == question), None)
                if example is None or not example.candidates:    # free-form: generated, as `evaluate` does
                    return Reading(None, self._generate(self.question_turns(question), picture), seen)
                probs = self._candidate_probs(picture, question, example.candidates)
        return Reading(probs, max(probs, key=probs.get), seen)

    def tower_sees_the_picture(self) -> bool:
        """True if the vision tower's input is the picture itself (a tiny tower at the pictures' size): then
        the page shows one panel. Probed once with a gradient at the run's size; pictures of their own size
        (LLaVA JSON) may differ one from another, so they always get both panels."""
        if self.cfg.route == "ascii" or self.side is None:
            return False
        probe = (np.arange(self.side * self.side) % 256).astype(np.uint8).reshape(self.side, self.side)
        return bool(np.array_equal(self.task.seen(probe[None])[0].image, probe))

    def _class_probs(self, picture: np.ndarray) -> dict[str, float]:
        import torch

        from ..infer.scorer import LabelScorer
        from ..infer.tta import score_views

        if self._class_scorer is None:
            t = self.task
            self._class_scorer = LabelScorer(self.loaded.model, t.label_ids, t.pad_id, t.eos_id, self.cfg.eval.score_eos)
        probs = torch.softmax(score_views(self._class_scorer, self.task, picture[None], self.views), -1)[0]
        return {name: float(p) for name, p in zip(self.task.label_names, probs.tolist())}

    def _candidate_probs(self, picture, question: str, candidates: tuple[str, ...]) -> dict[str, float]:
        """A question's candidates scored as ``evaluate`` scores them: its turns, the run's views, averaged."""
        import torch

        turns = self.question_turns(question)
        scorer = self.answerer.scorer(candidates)
        total = 0
        for view in self.views:
            seen = view(picture[None])
            total = total + torch.log_softmax(
                scorer.score([self.task.question_ids(turns, seen[0])], self.task.image_extras(seen)), -1)
        probs = torch.softmax(total / len(self.views), -1)[0]
        return {c: float(p) for c, p in zip(candidates, probs.tolist())}

    @staticmethod
    def question_turns(question: str) -> list[tuple[str, str]]:
        """A single question about the picture, as the question sets write it (``data/questions.py``)."""
        from ..data.llava_json import IMAGE_PLACEHOLDER

        return [("human", IMAGE_PLACEHOLDER + "\n" + question.replace(IMAGE_PLACEHOLDER, "").strip())]

    # -- chat --------------------------------------------------------------------------------
    def reply(self, picture: np.ndarray, history: list[tuple[str, str]], message: str, temperature: float = 0.0,
              top_p: float = 1.0, max_new_tokens: int = 32) -> str:
        """The model's answer to ``message`` after the earlier (user, assistant) exchanges about ``picture``."""
        with self._lock:
            return self._generate(self.chat_turns(history, message), picture, temperature, top_p, max_new_tokens)

    def chat_turns(self, history: list[tuple[str, str]], message: str) -> list[tuple[str, str]]:
        """The conversation as turns; the first user turn is what ``chat`` writes for its question (the run's
        prompt around the picture), so a first exchange at temperature 0 is ``chat``'s answer."""
        from ..data.llava_json import IMAGE_PLACEHOLDER

        said = [u.replace(IMAGE_PLACEHOLDER, "") for u, _ in history] + [message.replace(IMAGE_PLACEHOLDER, "")]
        first = said[0].strip()
        opening = self.task.content_messages(IMAGE_PLACEHOLDER + ("\n" + first if first else ""))[-1]["content"]
        turns = []
        for k, (user, (_, answer)) in enumerate(zip(said, history)):
            turns += [("human", opening if k == 0 else user), ("gpt", answer)]
        return turns + [("human", opening if not history else said[-1])]

    def _generate(self, turns, picture, temperature=0.0, top_p=1.0, max_new_tokens=None) -> str:
        from ..infer.chat import generate_reply
        from ..tasks.base import Encoded

        enc = Encoded([self.task.question_ids(turns, picture)], self.task.image_extras(picture[None]))
        return generate_reply(self.loaded, enc, max_new_tokens or self.answerer.max_new_tokens, temperature, top_p)

    # -- what the page offers ----------------------------------------------------------------
    def _example_questions(self) -> list[ExampleQuestion]:
        """One question of each type the run was trained on (question sets; none for classification)."""
        if not self.asks_questions:
            return []
        from ..data.vqa import is_vqa

        d = self.cfg.data
        if d.format != "llava-json" and is_vqa(d.dataset):
            return _vqa_questions(d, self.task.label_names)
        return _json_questions(d)

    def example_images(self, n: int = EXAMPLE_IMAGES) -> list[np.ndarray]:
        """Up to ``n`` pictures of the run's own test (else validation) data, one per class where known;
        none when that data is not on this machine (nothing is downloaded for a demo)."""
        d = self.cfg.data
        for split in ("test", "valid"):
            try:
                return _example_images(d, split, n)
            except (UserError, OSError):
                continue
        return []

    def example_files(self, n: int = EXAMPLE_IMAGES) -> list[str]:
        """:meth:`example_images` as PNG files (Gradio's examples are files), written once into a temporary
        folder that lives as long as this object."""
        if self._example_files is None:
            import tempfile

            from PIL import Image

            self._example_files = []
            pictures = self.example_images(n)
            if pictures:
                self._examples_dir = tempfile.TemporaryDirectory(prefix="mistral-vision-serve-")
                for i, pic in enumerate(pictures):
                    path = Path(self._examples_dir.name) / f"example-{i}.png"
                    Image.fromarray(np.asarray(pic, np.uint8)).save(path)
                    self._example_files.append(str(path))
        return self._example_files


def _vqa_questions(d, label_names) -> list[ExampleQuestion]:
    from ..data.vqa import QuestionMaker, check_types, get_vqa

    spec = get_vqa(d.dataset)
    maker = QuestionMaker(spec, label_names, d.grid)
    rng = np.random.default_rng(0)
    k = d.grid * d.grid
    cells = [(3 * i + 1) % len(label_names) for i in range(k)]       # a full board of distinct classes: every type applies
    out = []
    for kind in check_types(d.question_types, spec):
        q = maker.question(rng, kind, 0, cells)
        if q is not None:
            out.append(ExampleQuestion(kind, q.question, tuple(q.candidates) or None))
    return out


def _json_questions(d) -> list[ExampleQuestion]:
    """The first question of each type in the run's validation (else training) file; none if it is gone."""
    from ..data.questions import from_llava_json

    for path, folder in ((d.valid_path, d.valid_image_folder or d.image_folder), (d.path, d.image_folder)):
        if path is None:
            continue
        try:
            qs = from_llava_json(path, folder, in_memory=False)
        except (UserError, OSError):
            continue
        by_type: dict[str, ExampleQuestion] = {}
        for it in qs.items:
            if it.image >= 0 and it.type not in by_type and it.type != "caption":
                by_type[it.type] = ExampleQuestion(it.type, it.question, it.candidates)
        return list(by_type.values())
    return []


def _example_images(d, split: str, n: int) -> list[np.ndarray]:
    from ..data.questions import from_llava_json, vqa_split
    from ..data.vqa import is_vqa

    if d.format == "llava-json":
        path, folder = {"test": (d.test_path, d.test_image_folder), "valid": (d.valid_path, d.valid_image_folder)}[split]
        if path is None:
            raise UserError(f"no {split} file")
        images = from_llava_json(path, folder or d.image_folder, in_memory=False).images
        return [np.asarray(images[i]) for i in range(min(n, len(images)))]
    if is_vqa(d.dataset):
        few = replace(d, offline=True, **{f"{split}_canvases": n})
        return list(vqa_split(few, split).images)
    from ..data.datasets import load_split

    data = load_split(d.dataset, split, d.data_dir, True, d.valid_size, d.split_seed)
    first = {}                                          # one picture per class, in class order
    for i, y in enumerate(data.labels.tolist()):
        first.setdefault(int(y), i)
        if len(first) == len(data.label_names):
            break
    return [data.images[first[y]] for y in sorted(first)][:n]
