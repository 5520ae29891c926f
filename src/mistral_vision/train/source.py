"""Where training examples come from: a registered dataset (encoded by the run's task fresh
each epoch, with optional augmentation), a question set's conversations (the same, every
assistant turn trained; a stage may take only its captions or its questions, or a LLaVA JSON
file of its own or a selection.json of one), a chat JSONL file (fixed), or a text stage's text
(``data/textdata.py``: generated or file conversations, every assistant turn trained; plain text in token
windows, every token trained). Not for: batching or the loop.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..data.augment import augment_images
from ..tasks.base import Examples
from ..tasks.batch import IGNORE, example


def augment_settings(t) -> dict:
    """The training config's per-epoch augmentation, as ``augment_images`` takes it."""
    return dict(shift=t.augment_shift, rotate=t.augment_rotate, scale=t.augment_scale, flip=t.augment_flip)


class DatasetSource:
    """Training split of a dataset, encoded by the task; encoded again each epoch if augmented."""

    def __init__(self, cfg, task, data):
        self.images, self.labels = data.images, data.labels
        self.task = task
        t = cfg.train
        self.augment = augment_settings(t)
        self.seed = t.seed
        self._fixed = None   # the examples, kept when no augmentation makes epochs differ

    def __len__(self) -> int:
        return len(self.images)

    def epoch_examples(self, epoch: int) -> Examples:
        if self._fixed is not None:
            return self._fixed
        images = augment_images(self.images, np.random.default_rng([self.seed, epoch, 1]), **self.augment)
        out = self.task.examples(images, self.labels)
        if not any(self.augment.values()):
            self._fixed = out
        return out


class ChatFileSource:
    """A chat JSONL (Mistral fine-tuning format): loss on the last assistant message."""

    task = None

    def __init__(self, path: str, tokenizer):
        from ..chatfile import load_chat_file

        self.examples = Examples([])
        for i, sample in enumerate(load_chat_file(path), 1):
            msgs = sample["messages"]
            prompt = tokenizer.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
            full = tokenizer.apply_chat_template(msgs, tokenize=False)
            if not full.startswith(prompt):
                raise UserError(f"{path}: line {i}: the chat template does not extend the prompt with the answer")
            p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            f_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
            if f_ids[:len(p_ids)] != p_ids:
                raise UserError(f"{path}: line {i}: tokenizing the answer changes the prompt's tokens")
            ids, labels = example(p_ids, f_ids[len(p_ids):])
            if all(t == IGNORE for t in labels):
                raise UserError(f"{path}: line {i}: empty answer")
            if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
                from ..models.tokenizer import check_no_unknown

                check_no_unknown(tokenizer, ids, full, f"{path}: line {i}")
            self.examples.pairs.append((ids, labels))

    def __len__(self) -> int:
        return len(self.examples)

    def epoch_examples(self, epoch: int) -> Examples:
        return self.examples


class ConversationSource:
    """Conversations of a question set (``data/questions.py``), encoded by the task; images augmented per
    epoch like a dataset's. Token ids are kept across epochs when only the image tensors change (LLaVA)."""

    def __init__(self, cfg, task, qset):
        self.qset, self.task = qset, task
        t = cfg.train
        self.augment = augment_settings(t)
        self.seed = t.seed
        self._pairs = None
        self._fixed = None

    def __len__(self) -> int:
        return len(self.qset)

    def epoch_examples(self, epoch: int) -> Examples:
        if self._fixed is not None:
            return self._fixed
        images = self.qset.images
        moving = any(self.augment.values()) and len(images) > 0     # text-only sets have no images to move
        if moving:
            if not isinstance(images, (list, np.ndarray)) or len({np.shape(im) for im in images}) != 1:
                raise UserError("train.augment_* needs images of one size held in memory (the VQA sets); "
                                "turn augmentation off for this LLaVA JSON data")
            images = augment_images(np.stack(images), np.random.default_rng([self.seed, epoch, 1]), **self.augment)
        keep = None if self.task.text_sees_pixels else self._pairs
        out = self.task.conversation_examples(self.qset.items, images, keep)
        self._pairs = out.pairs
        if not moving:
            self._fixed = out
        return out


class PlainTextSource:
    """A plain-text corpus cut into windows of ``window`` tokens (BOS first), the loss on every token: no chat
    template, no answers - language modelling as pretraining does it."""

    def __init__(self, path: str, task, window: int):
        from ..data.textdata import plain_text

        self.task = task
        tok = task.tokenizer
        text = plain_text(path)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if tok.unk_token_id is not None and tok.unk_token_id in ids:
            from ..models.tokenizer import check_no_unknown

            check_no_unknown(tok, ids, text, path)
        bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
        step = max(window - len(bos), 1)
        chunks = [ids[i:i + step] for i in range(0, len(ids), step)]
        pairs = [(bos + c, [IGNORE] * len(bos) + c) for c in chunks if len(bos + c) >= 2]
        if not pairs:
            raise UserError(f"{path}: too short to train on ({len(ids)} tokens)")
        self.examples = Examples(pairs)

    def __len__(self) -> int:
        return len(self.examples)

    def epoch_examples(self, epoch: int) -> Examples:
        return self.examples


def text_source(cfg, task, stage):
    """A text stage's examples: ``text-skills`` conversations, a chat / LLaVA JSON file's, or plain-text windows."""
    from ..data.textdata import conversations_file, is_text_dataset, skills_set, stage_text, text_kind

    src = stage_text(cfg.data, stage.data)
    if is_text_dataset(src):
        return ConversationSource(cfg, task, skills_set(cfg.data, "train", True))
    if text_kind(src, f"stage {stage.name}: data") == "plain":
        return PlainTextSource(src, task, cfg.data.text_window)
    return ConversationSource(cfg, task, conversations_file(src, f"stage {stage.name}: data"))


def training_source(cfg, task, data, stage=None):
    """Examples of a text stage's text, of ``cfg.train.train_file`` if set (ASCII route), of a question set's
    conversations (those ``stage.data`` selects), else of the training split ``data``."""
    if getattr(stage, "kind", "vision") == "text":
        return text_source(cfg, task, stage)
    if cfg.train.train_file:              # config validation keeps this to the ascii route
        return ChatFileSource(cfg.train.train_file, task.tokenizer)
    from ..data.questions import QuestionSet
    from ..data.run_data import load_questions

    if isinstance(data, QuestionSet):
        which = getattr(stage, "data", None)
        if which not in (None, "all", "captions", "questions"):
            from dataclasses import replace

            from ..data.selection import is_manifest

            # a selection.json's images are where it was made unless the stage says otherwise
            folder = stage.image_folder if is_manifest(which) else stage.image_folder or cfg.data.image_folder
            d = replace(cfg.data, image_folder=folder, train_limit=None)
            return ConversationSource(cfg, task, load_questions(d, "train", True, path=which))
        return ConversationSource(cfg, task, data.select(which))
    return DatasetSource(cfg, task, data)
