"""``export``: a finished run's model as a folder plain transformers loads, LoRA merged.

A LLaVA run becomes what ``LlavaForConditionalGeneration.from_pretrained(DIR)`` and
``AutoProcessor.from_pretrained(DIR)`` load; an ASCII run what ``AutoModelForCausalLM`` and
``AutoTokenizer`` load (with its chat template and any ASCII / class-name tokens). The folder
is written under a temporary name and renamed when complete. Not for: training or scoring.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def export_run(run_dir: str | Path, out: str | Path) -> dict:
    """Write ``out``; -> what was exported."""
    from ..io import atomic_dir, write_json
    from .build import is_saved, load_run_model

    run_dir, out = Path(run_dir), Path(out)
    if not is_saved(run_dir / "model"):
        raise UserError(f"{run_dir}: no finished model to export (model/ is missing: the run is untrained or was "
                        f"interrupted); finish it with `mistral-vision train CONFIG --resume` first")
    if out.resolve() == (run_dir / "model").resolve():
        raise UserError(f"--out {out}: choose a folder other than the run's own model/")
    model, processor, manifest = load_run_model(run_dir / "model")
    merged = hasattr(model, "peft_config")
    if merged:
        model = model.merge_and_unload()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        info = {"run": str(run_dir), "route": manifest["route"], "class": type(model).__name__, "lora_merged": merged,
                "parts": manifest["parts"]}
        write_json(tmp / "export.json", info)
    return info
