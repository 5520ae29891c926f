"""The exported folder's README.md (a model card) and, for the ASCII route, its rendering settings.

Everything a user needs to prompt the model with plain transformers and nothing else: the chat
template and a prompt exactly as training wrote it, a short loading + generation snippet (tests
execute it), the training data and stages, and the accuracy the run measured (its
``eval/*/metrics.json``). An ASCII model reads art, not pixels, so ``ascii_format.json`` records
how an image becomes that art (size, ramp, crop, inversion) and the prompt around it; the card's
snippet renders with numpy alone. Not for: writing the model files (``export/__init__.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

ASCII_FORMAT = "ascii_format.json"
IMAGE_FILE = "image.png"           # what the snippets open: the user's own image
EXAMPLE_QUESTION = "What is in the image?"    # question-set runs: the snippet's question


def content_parts(text: str) -> list[dict] | str:
    """A user turn as transformers' list of parts (an ``<image>`` line -> an image part), or the string itself
    when ``<image>`` is not on a line of its own; the chat templates render both alike."""
    if any("<image>" in line and line != "<image>" for line in text.split("\n")):
        return text
    parts: list[dict] = []
    for line in text.split("\n"):
        if line == "<image>":
            parts.append({"type": "image"})
        elif parts and parts[-1]["type"] == "text":
            parts[-1]["text"] += "\n" + line
        else:
            parts.append({"type": "text", "text": line})
    return parts


def user_text(cfg, task, questions: bool) -> str:
    """The user turn as training wrote it, the image as ``<image>`` (LLaVA) or ``{art}`` (ASCII)."""
    stand_in = "<image>" if cfg.route == "llava" else "{art}"
    if questions:
        return stand_in + "\n" + "{question}"
    return task.content_messages(stand_in)[-1]["content"]


def ascii_format(cfg, prompt: str, label_names, image_side: int | None, template: str) -> dict:
    """How an image becomes the text an ASCII model reads, for ``ascii_format.json``."""
    a = cfg.ascii
    return {"width": a.width, "height": a.height, "ramp": a.ramp, "invert": a.invert, "crop": a.crop,
            "image_size": image_side, "prompt": prompt, "system": cfg.prompt.system,
            "prompt_template": cfg.prompt.template, "chat_template": template,
            "labels": list(label_names),
            "rule": "grayscale, white ink on black (invert: dark ink on white); cut `crop` px from each border; "
                    "average each cell of a height x width grid; level = floor(mean * len(ramp) / 256); "
                    "character ramp[level] (ramp[0] is a space); lines joined by \\n, no trailing newline"}


def _divides(cfg, side: int | None) -> bool:
    inner = (side or 0) - 2 * cfg.ascii.crop
    return inner > 0 and inner % cfg.ascii.height == 0 and inner % cfg.ascii.width == 0


def snippet(cfg, out: Path, prompt: str, max_new_tokens: int, image_side: int | None, tiny_tower: bool) -> str:
    """A loading + generation snippet with plain transformers (and numpy for ASCII art)."""
    head = f'path = "{out}"  # this folder\n'
    if "{question}" in prompt:
        head += f'question = "{EXAMPLE_QUESTION}"  # ask as the training conversations did\n'
    if cfg.route == "llava":
        content = repr(content_parts(prompt)).replace("'{question}'", "question")
        prep = f'.convert("L").resize(({image_side}, {image_side}), Image.BILINEAR)' if tiny_tower else '.convert("RGB")'
        return (
            "from PIL import Image\n"
            "from transformers import AutoProcessor, LlavaForConditionalGeneration\n\n" + head +
            "model = LlavaForConditionalGeneration.from_pretrained(path).eval()\n"
            "processor = AutoProcessor.from_pretrained(path)\n"
            f'image = Image.open("{IMAGE_FILE}"){prep}\n'
            f'messages = [{{"role": "user", "content": {content}}}]\n'
            "prompt = processor.apply_chat_template(messages, add_generation_prompt=True)\n"
            'inputs = processor(images=image, text=prompt, add_special_tokens=False, return_tensors="pt")\n'
            f"out = model.generate(**inputs, max_new_tokens={max_new_tokens}, do_sample=False)\n"
            'print(processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))\n')
    side = image_side or 28
    if _divides(cfg, side):
        render = (
            f'a = np.asarray(Image.open("{IMAGE_FILE}").convert("L").resize(({side}, {side}), Image.BILINEAR), '
            'np.int64)\n'
            'c, h, w, ramp = fmt["crop"], fmt["height"], fmt["width"], fmt["ramp"]\n'
            "a = a[c:a.shape[0] - c, c:a.shape[1] - c]\n"
            'a = 255 - a if fmt["invert"] else a\n'
            "fy, fx = a.shape[0] // h, a.shape[1] // w\n"
            "levels = a.reshape(h, fy, w, fx).sum(axis=(1, 3)) * len(ramp) // (256 * fy * fx)\n"
            'art = "\\n".join("".join(ramp[v] for v in row) for row in levels)\n')
    else:       # area resampling between sizes that do not divide: this package's renderer is the reference
        render = (
            "from mistral_vision.ascii.render import render_ascii   # pip install mistral-vision\n"
            f'a = np.asarray(Image.open("{IMAGE_FILE}").convert("L").resize(({side}, {side}), Image.BILINEAR))\n'
            'art = render_ascii(a[None], fmt["width"], fmt["height"], fmt["ramp"], fmt["invert"], fmt["crop"])[0]\n')
    return (
        "import json\n\nimport numpy as np\nfrom PIL import Image\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n" + head +
        "model = AutoModelForCausalLM.from_pretrained(path).eval()\n"
        "tokenizer = AutoTokenizer.from_pretrained(path)\n"
        f'fmt = json.load(open(f"{{path}}/{ASCII_FORMAT}"))\n' + render +
        'messages = ([{"role": "system", "content": fmt["system"]}] if fmt["system"] else []) + '
        '[{"role": "user", "content": fmt["prompt"].replace("{art}", art)'
        + ('.replace("{question}", question)' if "{question}" in prompt else "") + '}]\n'
        "text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)\n"
        'inputs = tokenizer(text, add_special_tokens=False, return_tensors="pt")\n'
        f"out = model.generate(**inputs, max_new_tokens={max_new_tokens}, do_sample=False)\n"
        'print(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))\n')


def _stages_table(cfg, own_template: str, questions: bool) -> list[str]:
    rows = ["| stage | data | chat template | trains (lr) | epochs |", "|---|---|---|---|---|"]
    for s in cfg.stages:
        parts = ", ".join(f"{p} ({lr:g})" for p, lr in s.trainable.items())
        data = (s.data or "all") if questions else f"{cfg.data.dataset} train"
        if s.kind == "text":
            from ..data.textdata import stage_text

            data = f"text: {stage_text(cfg.data, s.data)}"
        rows.append(f"| {s.name} | {data} | {s.template or own_template} | {parts} | {s.epochs:g} |")
    return rows


def _data_lines(cfg, run_dir: Path, label_names, own_template: str, questions: bool) -> list[str]:
    d = cfg.data
    summary = run_dir / "train_summary.json"
    samples = json.loads(summary.read_text()).get("train_samples") if summary.is_file() else None
    from ..data.textdata import is_text_data

    if is_text_data(d):
        what = (f"text only, `text-skills` ({d.text_samples:,} generated conversations of {d.text_turns} questions)"
                if d.format == "idx" else f"text only, `{Path(d.path).name}`")
    elif d.format == "llava-json":
        what = f"LLaVA JSON conversations `{Path(d.path).name}` (images from `{d.image_folder}`)"
    elif label_names and d.dataset in ("mnist", "fashion-mnist"):
        what = f"`{d.dataset}` training split (classes: {', '.join(label_names)})"
    else:
        what = f"`{d.dataset}` ({d.train_canvases:,} training canvases, {d.grid}x{d.grid} cells)"
    lines = [f"- Data: {what}" + (f", {samples:,} training samples" if samples else "") + "."]
    if cfg.route == "llava":
        v = cfg.vision
        lines.append(f"- Model: vision tower `{v.tower}` (layer {v.feature_layer}) -> projector `{v.projector}` -> "
                     f"LLM `{cfg.model.backbone}`" + (" (LoRA merged)" if cfg.model.lora.enabled else "") + ".")
    else:
        lines.append(f"- Model: `{cfg.model.backbone}`" + (" (LoRA merged)" if cfg.model.lora.enabled else "")
                     + f", tokenizer `{cfg.tokenizer.kind}`.")
    return lines + ["", *_stages_table(cfg, own_template, questions)]


def _results_lines(metrics: dict[str, dict], run_dir: Path) -> list[str]:
    if not metrics:
        return [f"Not measured in the run folder: `mistral-vision evaluate {run_dir}` measures it."]
    rows = ["| evaluation | accuracy | 95% CI | n |", "|---|---|---|---|"]
    for stem, m in metrics.items():
        ci = m.get("accuracy_ci95") or m.get("ci95")
        ci = f"{ci[0]:.2%} - {ci[1]:.2%}" if ci else ""
        rows.append(f"| {stem} | {m['accuracy']:.2%} | {ci} | {m.get('n', '')} |")
    return rows + ["", f"From `{run_dir}/eval/*/metrics.json` (label scoring or generation, as `evaluate` ran)."]


def model_card(cfg, run_dir: Path, out: Path, prompt: str, rendered: str, metrics: dict, label_names,
               image_side: int | None, tiny_tower: bool, n_image_tokens: int | None, max_new_tokens: int,
               template: str) -> str:
    """README.md of an exported folder; ``template`` names the chat template the export is prompted with."""
    from ..config import inference_template

    llava = cfg.route == "llava"
    questions = "{question}" in prompt
    own = template if inference_template(cfg) is None else "the backbone's own"    # stages that set none
    if llava:
        seeing = (f"The processor expands `<image>` into {n_image_tokens} image tokens. Images: "
                  + (f"{image_side}x{image_side} grayscale, white on black (the snippet converts and resizes)."
                     if tiny_tower else "any size; the tower's image processor resizes them."))
    else:
        seeing = (f"The image enters the prompt as ASCII art (`{{art}}`): {cfg.ascii.width}x{cfg.ascii.height} "
                  f"characters, ramp `{cfg.ascii.ramp!r}`, crop {cfg.ascii.crop}, invert {cfg.ascii.invert}, from "
                  f"{image_side or 'the'} px images; `{ASCII_FORMAT}` records this and the prompt.")
    answers = (f"The answer is one of: {', '.join(label_names)}." if label_names and not questions
               else "Answers are free text, as in the training conversations.")
    return "\n".join([
        "---", "library_name: transformers", f"pipeline_tag: {'image-text-to-text' if llava else 'text-generation'}",
        f"tags: [mistral-vision, {'llava' if llava else 'ascii-art'}, {cfg.data.dataset}]", "---", "",
        f"# {cfg.name}", "",
        f"Exported by mistral-vision from run `{run_dir}` (route `{cfg.route}`): loads with "
        + ("`LlavaForConditionalGeneration` and `AutoProcessor`." if llava else
           "`AutoModelForCausalLM` and `AutoTokenizer`."), "",
        "## Prompt format", "",
        f"Chat template `{template}` (saved with the tokenizer: the last training stage's). "
        "A prompt exactly as training wrote it, ready for the answer:", "",
        "```text", rendered, "```", "", seeing + " " + answers, "",
        "## Use with transformers", "", "```python", snippet(cfg, out, prompt, max_new_tokens, image_side, tiny_tower)
        + "```", "",
        "## Training", "", *_data_lines(cfg, run_dir, label_names, own, questions), "",
        "## Results", "", *_results_lines(metrics, run_dir), ""])
