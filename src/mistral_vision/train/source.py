"""Where training examples come from: a registered dataset (encoded by the run's task fresh
each epoch, with optional augmentation), a question set's conversations (the same, every
assistant turn trained; a stage may take only its captions or its questions, or a LLaVA JSON
file of its own or a selection.json of one), or a chat JSONL file (fixed). Not for: batching or the loop.
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
        if any(self.augment.values()):
            if not isinstance(images, (list, np.ndarray)) or len({np.shape(im) for im in images}) != 1:
                raise UserError("train.augment_* needs images of one size held in memory (the VQA sets); "
                                "turn augmentation off for this LLaVA JSON data")
            images = augment_images(np.stack(images), np.random.default_rng([self.seed, epoch, 1]), **self.augment)
        keep = None if self.task.text_sees_pixels else self._pairs
        out = self.task.conversation_examples(self.qset.items, images, keep)
        self._pairs = out.pairs
        if not any(self.augment.values()):
            self._fixed = out
        return out


def training_source(cfg, task, data, stage=None):
    """Examples of ``cfg.train.train_file`` if set (ASCII route), of a question set's conversations (those
    ``stage.data`` selects), else of the training split ``data``."""
    if cfg.train.train_file:              # config validation keeps this to the ascii route
        return ChatFileSource(cfg.train.train_file, task.tokenizer)
    from ..data.questions import QuestionSet, load_questions

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
