"""``export``: a finished run's model as a folder plain transformers loads, LoRA merged.

A LLaVA run becomes what ``LlavaForConditionalGeneration.from_pretrained(DIR)`` and
``AutoProcessor.from_pretrained(DIR)`` load; an ASCII run what ``AutoModelForCausalLM`` and
``AutoTokenizer`` load (with its chat template and any ASCII / class-name tokens). The folder
is written under a temporary name and renamed when complete. Not for: training or scoring.
"""
from __future__ import annotations

from pathlib import Path

from .errors import UserError


def export_run(run_dir: str | Path, out: str | Path) -> dict:
    """Write ``out``; -> what was exported."""
    from .config import load_run_config
    from .io import atomic_dir, write_json
    from .models.build import is_saved, load_run_model

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
