"""``chat``: a free answer to a question about one image, generated greedily, for either route.

The ASCII route renders the image into the user turn first; the LLaVA route puts ``<image>``
there and hands the tower the pixels. Unlike ``predict`` nothing is label-scored: the model
may answer anything, which is the point of asking it freely. Any run can be asked: one trained
on a classification dataset, a VQA set or a LLaVA JSON file. Not for: classification.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def never_saw_questions(cfg) -> str | None:
    """Why the run's model was never shown a question in training, or None if it was.

    A classification run whose prompt template is the image alone (``plain``) learnt to answer
    the class name after the image and nothing else; asked a question, it answers as if it had
    not been (on the demo runs: "3" for a 5, a blank line for a 0). Question sets (VQA, LLaVA
    JSON) carry their questions in the data."""
    from ..data.run_data import is_question_set
    from ..prompts import resolve_template

    if is_question_set(cfg.data):
        return None
    if resolve_template(cfg.prompt.template).replace("{art}", "").strip():
        return None
    return (f"prompt.template {cfg.prompt.template!r} shows the image alone, so this run never saw a question and "
            "answers every one as if it were not there; ask nothing, or train with a template that asks "
            "(prompt.template: ask)")


def chat(run_dir: str | Path, image: str | Path, question: str = "", max_new_tokens: int = 32,
         warn=None) -> str:
    """The run's model's answer to ``question`` about the image file ``image``; ``warn(text)`` hears
    why the answer may be meaningless (a question asked of a run that never saw one)."""
    from ..config import load_run_config
    from ..data.images import load_image
    from ..data.run_data import image_side
    from .loading import load_for_inference

    cfg = load_run_config(run_dir)
    if not Path(image).is_file():
        raise UserError(f"{image}: no such image file")
    pixels = load_image(image, image_side(cfg.data), invert="auto")   # at the size the run was trained on
    loaded = load_for_inference(cfg, run_dir)
    why = question and never_saw_questions(cfg)     # said once the run has loaded: a bad run is its own one line
    if why and warn is not None:
        warn(why)
    return generate_reply(loaded, loaded.task.chat_inputs(pixels, question), max_new_tokens)


def generate_reply(loaded, enc, max_new_tokens: int = 32, temperature: float = 0.0, top_p: float = 1.0) -> str:
    """The loaded run's reply to one encoded prompt (``Encoded`` with one row of ids, plus its pixel values).

    Greedy at ``temperature`` 0 (what ``chat`` does), else sampled with that temperature and nucleus ``top_p``
    (the web demo's controls).
    """
    import torch
    from transformers import GenerationConfig

    from ..models.build import text_tokenizer

    model, device = loaded.model, loaded.device
    ids = torch.tensor(enc.ids, device=device)
    tok = text_tokenizer(loaded.processor)
    how = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    settings = GenerationConfig(max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                eos_token_id=tok.eos_token_id, **how)   # not a checkpoint's own sampling settings
    extras = {k: v.to(device=device, dtype=model.dtype if v.is_floating_point() else v.dtype)
              for k, v in enc.extras.items()}
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=settings, **extras)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
