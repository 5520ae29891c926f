"""Fine-tuning jobs on Mistral's platform: upload a chat JSONL, create / start / cancel / list
jobs, follow one to the end, and record the job in a run directory.

``api_job.json`` in the run directory holds the job id, base model, uploaded file ids and
(once the job succeeds) the fine-tuned model name, so ``predict --backend mistral-api`` and
``run`` find the model without being told. Not for: predictions (``predict.py``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import UserError
from ..io import write_json
from .client import call

JOB_FILE = "api_job.json"
FINAL = {"SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED"}
FAILED = {"FAILED", "FAILED_VALIDATION", "CANCELLED"}


def require_file(path: str | Path) -> Path:
    """The checks `mistral-vision validate` makes, as one line naming the bad line numbers."""
    from ..chatfile import require_valid

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    require_valid(path)
    return path


def upload(client, path: str | Path) -> str:
    """Validate ``path`` and upload it for fine-tuning -> file id."""
    path = require_file(path)
    out = call(f"uploading {path}", client.files.upload,
               file={"file_name": path.name, "content": path.read_bytes()}, purpose="fine-tune")
    return out.id


def create_job(client, model: str, train_ids: list[str], valid_ids: list[str], steps: int | None = None,
               epochs: float | None = None, lr: float | None = None, suffix: str | None = None,
               wandb_project: str | None = None, auto_start: bool = True):
    hp = {k: v for k, v in {"training_steps": steps, "epochs": epochs, "learning_rate": lr}.items() if v is not None}
    kw = {}
    if wandb_project:
        import os

        key = os.environ.get("WANDB_API_KEY")
        if not key:
            raise UserError("--wandb-project needs WANDB_API_KEY in the environment")
        kw["integrations"] = [{"type": "wandb", "project": wandb_project, "api_key": key}]
    if suffix:
        kw["suffix"] = suffix
    return call("creating the fine-tuning job", client.fine_tuning.jobs.create, model=model,
                training_files=[{"file_id": f, "weight": 1} for f in train_ids], validation_files=valid_ids or None,
                hyperparameters=hp, auto_start=auto_start, **kw)


def get_job(client, job_id: str):
    return call(f"job {job_id}", client.fine_tuning.jobs.get, job_id=job_id)


def cancel_job(client, job_id: str):
    return call(f"cancelling job {job_id}", client.fine_tuning.jobs.cancel, job_id=job_id)


def start_job(client, job_id: str):
    return call(f"starting job {job_id}", client.fine_tuning.jobs.start, job_id=job_id)


def list_jobs(client) -> list:
    return list(call("listing jobs", client.fine_tuning.jobs.list).data or [])


def progress_line(job) -> str:
    """status, step and the latest train / valid loss from the job's checkpoints."""
    parts = [f"{job.id} {job.status}"]
    cks = sorted(getattr(job, "checkpoints", None) or [], key=lambda c: c.step_number)
    if cks:
        c = cks[-1]
        total = getattr(job.hyperparameters, "training_steps", None)
        parts.append(f"step {c.step_number}" + (f"/{total}" if total else ""))
        for name in ("train_loss", "valid_loss", "valid_mean_token_accuracy"):
            v = getattr(c.metrics, name, None)
            if v is not None:
                parts.append(f"{name} {v:.4f}")
    if job.fine_tuned_model:
        parts.append(f"model {job.fine_tuned_model}")
    return "  ".join(parts)


def wait(client, job_id: str, run_dir: Path | None = None, poll_s: float = 10.0, log=print, sleep=time.sleep):
    """Follow a job until it ends; prints a line whenever something changes.

    Ctrl-C stops only the waiting (the job keeps running); ``api wait JOB`` picks it up again.
    A job that ends FAILED / FAILED_VALIDATION / CANCELLED is a one-line error.
    """
    last = None
    while True:
        job = get_job(client, job_id)
        line = progress_line(job)
        if line != last:
            log(line)
            last = line
        if run_dir is not None:
            record(run_dir, job)
        if job.status in FINAL:
            break
        sleep(poll_s)
    if job.status in FAILED:
        why = _failure_reason(job)
        raise UserError(f"job {job_id} ended {job.status}" + (f": {why}" if why else ""))
    return job


def _failure_reason(job) -> str:
    for ev in reversed(getattr(job, "events", None) or []):
        data = getattr(ev, "data", None) or {}
        msg = data.get("error") or data.get("message") if isinstance(data, dict) else None
        if msg:
            return " ".join(str(msg).split())[:200]
    return ""


def record(run_dir: str | Path, job, **extra) -> dict:
    """Write / update ``run_dir/api_job.json`` (never the API key)."""
    path = Path(run_dir) / JOB_FILE
    rec = json.loads(path.read_text()) if path.is_file() else {}
    rec.update({"job_id": job.id, "model": job.model, "status": job.status,
                "fine_tuned_model": job.fine_tuned_model, "training_files": list(job.training_files or []),
                "validation_files": list(getattr(job, "validation_files", None) or [])}, **extra)
    write_json(path, rec)
    return rec


def recorded_job(run_dir: str | Path) -> dict:
    path = Path(run_dir) / JOB_FILE
    if not path.is_file():
        raise UserError(f"{run_dir}: no {JOB_FILE} (no fine-tuning job recorded here); pass --model ft:...")
    return json.loads(path.read_text())


def print_jobs(jobs) -> None:
    for j in jobs:
        print(f"{j.id}  {j.status:<18} {j.model:<22} {j.fine_tuned_model or '-'}")
