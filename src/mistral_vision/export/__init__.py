"""``export``: a finished run's model as a folder plain transformers loads, LoRA merged.

A LLaVA run becomes what ``LlavaForConditionalGeneration.from_pretrained(DIR)`` and
``AutoProcessor.from_pretrained(DIR)`` load; an ASCII run what ``AutoModelForCausalLM`` and
``AutoTokenizer`` load (with its chat template and any ASCII / class-name tokens). The tokenizer
carries the chat template the run is prompted with (its last stage's). The folder also holds a
model card (``README.md``: prompt format, a transformers snippet, training data, measured accuracy),
``export.json`` (what was exported) and, for ASCII runs, ``ascii_format.json`` (how images become
the art the model reads). It is written under a temporary name and renamed when complete.
Not for: training or scoring; the card's text (``card.py``).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def export_run(run_dir: str | Path, out: str | Path) -> dict:
    """Write ``out``; -> what was exported."""
    from ..config import inference_template, load_run_config
    from ..data.run_data import image_side, is_question_set, label_names_for
    from ..eval.evaluate import load_metrics
    from ..io import atomic_dir, honour_umask, write_json, write_text
    from ..models.build import is_saved, load_run_model, text_tokenizer
    from ..models.chat_templates import template_name, with_chat_template
    from ..tasks import make_task
    from . import card

    run_dir, out = Path(run_dir), Path(out)
    cfg = load_run_config(run_dir)
    if not is_saved(run_dir / "model"):
        raise UserError(f"{run_dir}: no finished model to export (model/ is missing: the run is untrained or was "
                        f"interrupted); finish it with `mistral-vision train CONFIG --resume` first")
    here, there = run_dir.resolve(), out.resolve()
    if there == here or here in there.parents or there in here.parents:
        raise UserError(f"--out {out}: choose a folder outside the run (and not one that contains it)")
    if out.exists() and not (out / "export.json").is_file():
        raise UserError(f"--out {out}: exists and is not an earlier export (no export.json); choose a new folder")
    model, processor, manifest = load_run_model(run_dir / "model", cfg.model.dtype, cfg)
    processor = with_chat_template(processor, inference_template(cfg))    # runs saved before stage templates
    merged = hasattr(model, "peft_config")
    if merged:
        model = model.merge_and_unload()

    questions = is_question_set(cfg.data)
    names = label_names_for(cfg.data)
    task = make_task(cfg, processor, names)
    prompt = card.user_text(cfg, task, questions)
    shown = prompt.replace("{question}", card.EXAMPLE_QUESTION)
    messages = task.system_messages() + [{"role": "user", "content": shown}]
    rendered = text_tokenizer(processor).apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    side, tiny_tower, n_image = image_side(cfg.data), False, None
    if cfg.route == "llava":
        from ..models.llava import image_token_count
        from ..models.vision import get_tower

        tiny_tower, n_image = get_tower(cfg.vision.tower).is_tiny, image_token_count(processor)
        side = cfg.vision.image_size if tiny_tower else side
    new_tokens = 64 if questions else max(len(ids) for ids in task.label_ids) + 1
    template = template_name(text_tokenizer(processor).chat_template) or "the tokenizer's own (chat_template.jinja)"
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        info = {"run": str(run_dir), "route": manifest["route"], "class": type(model).__name__, "lora_merged": merged,
                "parts": manifest["parts"], "chat_template": template, "prompt": prompt}
        if cfg.route == "ascii":
            write_json(tmp / card.ASCII_FORMAT, card.ascii_format(cfg, prompt, names, side, template))
        write_text(tmp / "README.md", card.model_card(cfg, run_dir, out, prompt, rendered, load_metrics(run_dir),
                                                      names, side, tiny_tower, n_image, new_tokens, template))
        write_json(tmp / "export.json", info)
        honour_umask(tmp)               # safetensors writes 0600: an export is meant to be shared
    return info
