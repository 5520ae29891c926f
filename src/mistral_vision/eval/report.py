"""The run report: ``runs/<name>/report.md`` with training curves, metrics per evaluated
split, confusion matrices, per-class tables and the misclassified gallery.
Not for: computing anything new beyond the curves figure.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..io import read_jsonl_tolerant, write_text


def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}%"


def write_report(run_dir: str | Path, notes: list[str] | None = None) -> Path:
    from ..config import load_run_config
    from ..data.augment import TTA_VIEWS
    from .evaluate import load_metrics
    from .plots import plot_curves

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    L = _api_training(cfg, run_dir) if cfg.backend == "mistral-api" else _local_training(cfg, run_dir, plot_curves)
    evals = load_metrics(run_dir)
    questions = {k: m for k, m in evals.items() if "per_type" in m}
    evals = {k: m for k, m in evals.items() if k not in questions}
    L += _question_results(questions)
    if evals:
        L += ["## Results", "", "| split | n | accuracy | 95% CI | majority baseline | macro F1 | mean NLL | unparseable "
              "| test-time views |", "|---|---|---|---|---|---|---|---|---|"]
        for name, m in evals.items():
            lo, hi = m["accuracy_ci95"]
            L.append(f"| {name} | {m['n']} | **{_pct(m['accuracy'])}** | {_pct(lo)} - {_pct(hi)} | "
                     f"{_pct(m['majority_baseline'])} ({m['majority_class']}) | {m['macro_f1']:.4f} | "
                     f"{m['mean_nll'] if m['mean_nll'] is None else round(m['mean_nll'], 4)} | {m['unknown']} | "
                     f"{m.get('tta', 'none')} |")
        L.append("")
        for tta in sorted({m.get("tta", "none") for m in evals.values()} - {"none"}):
            L += [f"Test-time views `{tta}`: {TTA_VIEWS[tta][1]}, each scored; the class log-probabilities are "
                  "averaged.", ""]
        speeds = [f"{name} {m['predict_images_per_s']:.0f} images/s" for name, m in evals.items()
                  if m.get("predict_images_per_s") and "api" not in m]
        if speeds:
            L += ["Label-scored prediction speed (when last computed; all test-time views included): "
                  + ", ".join(speeds) + ".", ""]
        for name, m in evals.items():
            if "api" in m:
                x = m["api"]
                L += [f"API predictions {name} (`{x['model']}`): {x['requests']} answers, {x['retries']} retried "
                      f"requests (429 / 5xx / timeouts), {x['unparseable_answers']} answers not parseable to a "
                      "class (counted as wrong, shown as `unknown`).", ""]
    for name, m in evals.items():
        L += [f"### {name}", "", f"![confusion matrix](eval/{name}/confusion.png)", "",
              "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        L += [f"| {p['label']} | {p['precision']:.4f} | {p['recall']:.4f} | {p['f1']:.4f} | {p['support']} |"
              for p in m["per_class"]]
        L += ["", "Top confusions: " + (", ".join(f"{t['true']} -> {t['pred']} ({t['count']})"
                                                 for t in m["top_confusions"][:5]) or "none"), ""]
        if m.get("gallery"):
            L += [f"![misclassified](eval/{name}/misclassified.png)", ""]
        for ex in m.get("gallery_examples", [])[:2]:
            L += [f"`{ex['index']}` as the model read it:", "", "```", ex["art"], "```", ""]
    for note in notes or []:
        L += [f"> Note: {note}", ""]
    L += ["## Configuration", "", "Every setting of this run, defaults included: [config.yaml](config.yaml) "
          "(the same as `config.json`).", ""]
    path = run_dir / "report.md"
    write_text(path, "\n".join(L))
    return path


def _question_results(evals: dict) -> list[str]:
    """Question-set results: overall and per question type, with intervals, IMG accuracy and FAILED answers."""
    if not evals:
        return []
    L = ["## Results (questions)", "", "| evaluation | n | accuracy | 95% CI | majority baseline | with image (IMG) "
         "| failed | answers | test-time views | questions/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in evals.items():
        lo, hi = m["ci95"]
        img = m.get("img")
        L.append(f"| {name} | {m['n']} | **{_pct(m['accuracy'])}** | {_pct(lo)} - {_pct(hi)} | "
                 f"{_pct(m.get('majority'))} | {_pct(img['accuracy']) + ' (n=' + str(img['n']) + ')' if img else 'n/a'} | {m['failed']} | "
                 f"{m['answers']} | {m['tta']} | {m.get('questions_per_s') or ''} |")
    L.append("")
    for name, m in evals.items():
        types = list(m["per_type"])
        L += [f"### {name}", "", "| type | " + " | ".join(types) + " |", "|---" * (len(types) + 1) + "|",
              "| accuracy | " + " | ".join(_pct(m["per_type"][t]["accuracy"]) for t in types) + " |",
              "| 95% CI | " + " | ".join(f"{_pct(m['per_type'][t]['ci95'][0])} - {_pct(m['per_type'][t]['ci95'][1])}"
                                        for t in types) + " |",
              "| majority answer | " + " | ".join(_pct(m["per_type"][t].get("majority")) for t in types) + " |",
              "| n | " + " | ".join(str(m["per_type"][t]["n"]) for t in types) + " |", "",
              f"![accuracy per question type](eval/{name}/per_type.png)", ""]
        if m.get("gallery"):
            L += [f"![wrong answers](eval/{name}/wrong_answers.png)", ""]
    return L


def _local_training(cfg, run_dir: Path, plot_curves) -> list[str]:
    summary_path = run_dir / "train_summary.json"
    if not summary_path.is_file():
        raise UserError(f"{run_dir}: no trained model (train_summary.json missing); train first")
    summary = json.loads(summary_path.read_text())
    metrics_log = read_jsonl_tolerant(run_dir / "metrics.jsonl")
    has_curves = plot_curves(metrics_log, run_dir / "curves.png", f"{cfg.name}: training")
    rates = sorted(r["images_per_s"] for r in metrics_log if "images_per_s" in r)
    toks = sorted(r["tokens_per_s"] for r in metrics_log if "tokens_per_s" in r)
    mdl = cfg.model
    L = [f"# Report: {cfg.name}", "",
         _headline(cfg) + f", backbone **{mdl.backbone}**"
         + (f" ({mdl.num_layers} layers, hidden {mdl.hidden_size}, {mdl.num_heads} heads / {mdl.num_kv_heads} KV heads)"
            if not mdl.backbone.startswith(("hf:",)) and mdl.backbone.endswith("tiny") else "")
         + f", {summary['params']:,} parameters ({summary['trainable_params']:,} trained), "
         + _tokenizer_words(cfg) + ".", "",
         "## Training", "",
         f"{summary['steps']} steps = {summary['epochs']} epochs over {summary['train_samples']:,} "
         f"{'conversations' if _is_questions(cfg) else 'images'} "
         f"in {summary['wall_s'] / 60:.1f} min on {summary['processes']} process(es)"
         + (f"; median {rates[len(rates) // 2]:.0f} images/s, {toks[len(toks) // 2]:.0f} tokens/s" if rates else "")
         + (f"; peak memory {summary['peak_rss_mb']:,.0f} MB." if summary.get("peak_rss_mb") else "."),
         ""]
    stages = summary.get("stages", [])
    if len(stages) > 1 or (stages and cfg.route != "ascii"):
        L += ["| stage | trains (learning rate) | steps | epochs | minutes |", "|---|---|---|---|---|"]
        L += [f"| {st['name']} | " + ", ".join(f"{p} ({lr:g})" for p, lr in st["trainable"].items())
              + f" | {st['steps']} | {st['epochs']} | {st['wall_s'] / 60:.1f} |" for st in stages]
        L.append("")
    if has_curves:
        L += ["![training curves](curves.png)", ""]
    return L


def _api_training(cfg, run_dir: Path) -> list[str]:
    from ..api.jobs import JOB_FILE

    L = [f"# Report: {cfg.name}", "", _headline(cfg) + ", backend **mistral-api**.", "", "## Fine-tuning job", ""]
    job_path = run_dir / JOB_FILE
    if job_path.is_file():
        job = json.loads(job_path.read_text())
        L += [f"Job `{job.get('job_id')}` on **{job.get('model')}**: status {job.get('status')}, fine-tuned model "
              f"`{job.get('fine_tuned_model')}`, training files {', '.join(job.get('training_files', []))}.", ""]
    else:
        L += [f"No job recorded; predictions come from `{cfg.api.fine_tuned_model}`.", ""]
    return L


def _is_questions(cfg) -> bool:
    from ..data.run_data import is_question_set

    return is_question_set(cfg.data)


def _tokenizer_words(cfg) -> str:
    t = cfg.tokenizer
    if t.kind == "default":
        return "char-level tokenizer" if cfg.model.backbone.endswith("-tiny") else "the checkpoint's tokenizer"
    how = f"chunks of {t.chunk_size}" if t.split == "chunks" else f"split {t.split}"
    base = "" if cfg.model.backbone.endswith("-tiny") else "the checkpoint's tokenizer extended with "
    return f"{base}the ASCII BPE tokenizer ({t.vocab_size} tokens, {how})"


def _headline(cfg) -> str:
    from ..data.textdata import is_text_data, stage_text

    if is_text_data(cfg.data):
        return f"Text **{stage_text(cfg.data, None)}** (text only: the LLM alone, saved as a causal LM)"
    if cfg.route == "llava":
        from ..models.vision import get_tower, strategy_of

        v = cfg.vision
        tower = get_tower(v.tower)
        shape = (f", patch {v.patch_size}, {v.num_layers} layers x {v.hidden_size}, random init" if tower.is_tiny
                 else f", {tower.checkpoint}")
        return (f"Dataset **{cfg.data.dataset}**, route **llava**: vision tower `{v.tower}`{shape}, feature layer "
                f"{v.feature_layer} ({strategy_of(v)}), projector `{v.projector}`, prompt template `{cfg.prompt.template}`")
    a = cfg.ascii
    return (f"Dataset **{cfg.data.dataset}**, ASCII {a.width}x{a.height} (crop {a.crop}, ramp `{a.ramp!r}`), "
            f"prompt template `{cfg.prompt.template}`")
