"""What a training run keeps on disk to resume: checkpoints inside a stage, results of finished stages.

Every ``save_every`` steps a stage writes its trainable weights, optimizer, scheduler, RNG
state and elapsed time to a temporary folder renamed into
``checkpoints/<i>-<stage>/step-N``, so a ``kill -9`` loses at most one interval. A finished
stage writes ``stages/<i>-<stage>/`` (the weights it trained + ``done.json`` naming the stage
and its parts + ``vocab.json``, the tokenizer's token ids), so a resumed run, or a later stage of
another run (``init_from``), starts from exactly what that stage produced. A text stage's LLM fits
either model: a causal LM's parameter names are found inside a LLaVA model's language model (and back),
and a vocabulary that grew by added tokens (``<image>``) keeps the trained rows. Not for: the loop.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from ..config import RunConfig, complete, from_dict, to_dict
from ..errors import UserError
from ..io import atomic_dir, write_json

# Settings that may change between a run and its resume without changing the result.
RESUME_FREE = {"name", "runs_dir", "train.save_every", "train.keep_checkpoints", "train.log_every",
               "train.threads", "train.eval_every", "train.eval_samples", "train.report_to", "eval", "data.data_dir",
               "data.offline", "data.valid_limit", "data.test_limit"}


def _flat(d: dict, prefix="") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if key in RESUME_FREE:
            continue
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):      # stages: stages.0.epochs
            v = {str(i): x for i, x in enumerate(v)}
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def config_difference(cfg: RunConfig, run_dir: Path) -> str | None:
    """The first setting a run folder was trained with that ``cfg`` changes, as ``key=saved but now new``."""
    # Both with their defaults written out: runs saved before stages were resolved into config.json compare too.
    saved = _flat(to_dict(complete(from_dict(RunConfig, json.loads((run_dir / "config.json").read_text())))))
    now = _flat(to_dict(complete(cfg)))
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            return f"{key}={saved.get(key)!r} but the config now says {now.get(key)!r}"
    return None


def has_training_state(run_dir: Path) -> bool:
    """True if the run folder holds something training produced: a checkpoint, a finished stage or a
    saved model. A folder with only ``config.json`` (training refused its data, or was killed before
    its first checkpoint) is not a run to resume: rerunning it with a corrected config starts afresh."""
    from ..models.build import is_saved

    run_dir = Path(run_dir)
    ck, st = run_dir / "checkpoints", run_dir / "stages"
    return (is_saved(run_dir / "model")
            or (ck.is_dir() and any(checkpoints(d) for d in ck.iterdir() if d.is_dir()))
            or (st.is_dir() and any(is_done(d) for d in st.iterdir() if d.is_dir())))


def check_resumable(cfg: RunConfig, run_dir: Path) -> None:
    if not (run_dir / "config.json").is_file():
        raise UserError(f"--resume: {run_dir} has no config.json; nothing to resume (drop --resume)")
    diff = config_difference(cfg, run_dir)
    if diff:
        raise UserError(f"--resume: {run_dir} was trained with {diff}; resume with the same settings or use a new "
                        "run name")


def stage_key(i: int, stage) -> str:
    return f"{i}-{stage.name}"


def checkpoints(stage_ck_dir: Path) -> list[Path]:
    found = [p for p in stage_ck_dir.glob("step-*") if (p / "state.json").is_file()] if stage_ck_dir.is_dir() else []
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def trainable_state(model) -> dict:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if k in names}


def save_checkpoint(model, opt, sched, ck_dir: Path, step: int, elapsed: float, keep: int) -> None:
    import torch

    with atomic_dir(ck_dir / f"step-{step:07d}") as tmp:
        torch.save({"model": trainable_state(model), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / "state.pt")
        write_json(tmp / "state.json", {"step": step, "elapsed": elapsed})
    for old in checkpoints(ck_dir)[:-max(1, keep)]:
        shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(model, opt, sched, ck: Path) -> dict:
    """Restore a checkpoint in place -> its state.json (step, elapsed)."""
    import torch

    state = torch.load(ck / "state.pt", map_location="cpu", weights_only=True)
    missing = set(trainable_state(model)) - set(state["model"])
    if missing:
        raise UserError(f"--resume: checkpoint {ck} does not match this model (missing {sorted(missing)[0]})")
    model.load_state_dict(state["model"], strict=False)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return json.loads((ck / "state.json").read_text())


def _grown_rows(mine, saved, saved_vocab) -> bool:
    """True if ``saved`` is an embedding matrix of the saved vocabulary and ``mine`` the same with rows added."""
    return (saved_vocab is not None and saved.ndim == 2 and mine.ndim == 2 and saved.shape[0] == len(saved_vocab)
            and mine.shape[0] > saved.shape[0] and mine.shape[1] == saved.shape[1])


def bare_name(name: str) -> str:
    """A parameter's name without PEFT's wrapping, so a stage result fits a run with or without LoRA."""
    if name.startswith("base_model.model."):
        name = name[len("base_model.model."):]
    return name.replace(".modules_to_save.default.", ".")


def save_stage_result(model, stage, out: Path, info: dict, vocab: dict | None = None) -> None:
    """The weights ``stage`` trained (under bare names), the tokenizer's ``vocab`` (token -> id) they index,
    and what it was; ``done.json`` is written last."""
    import torch

    with atomic_dir(out) as tmp:
        torch.save({bare_name(k): v for k, v in trainable_state(model).items()}, tmp / "state.pt")
        if vocab is not None:
            write_json(tmp / VOCAB_FILE, vocab)
        write_json(tmp / "done.json", {"stage": asdict(stage), **info})


VOCAB_FILE = "vocab.json"
# A causal LM's parameter names and the same LLM's inside a LLaVA model (either way round).
_LLM_PREFIXES = (("model.", "model.language_model."), ("model.language_model.", "model."))


def check_same_family(cfg, stage_dir: Path, who: str) -> None:
    """Refuse a stage of a run whose LLM is of the other family (Mistral vs LLaMA): the names and even the
    shapes may fit, the architecture does not."""
    from ..config import load_run_config
    from ..models.backbones import get_backbone

    src = Path(stage_dir).parent.parent
    if not (src / "config.json").is_file():
        return
    theirs = load_run_config(src).model.backbone
    a, b = get_backbone(theirs).family, get_backbone(cfg.model.backbone).family
    if a != b:
        raise UserError(f"{who}: {stage_dir} is a stage of a {a} run ({theirs}), but this run's backbone "
                        f"{cfg.model.backbone} is {b}; start from a run of the same family")


def is_done(stage_dir: Path) -> bool:
    return (stage_dir / "done.json").is_file() and (stage_dir / "state.pt").is_file()


def load_stage_result(model, stage_dir: Path, expect=None, who: str = "", vocab: dict | None = None) -> dict:
    """Load a finished stage's weights into ``model``; refuse a missing or incompatible one in one line.

    ``vocab`` (this run's tokenizer, token -> id): each token the stage was trained with must keep its id here;
    embedding rows of tokens added since (``<image>``) keep this model's values."""
    import torch

    where = who or str(stage_dir)
    if not is_done(stage_dir):
        raise UserError(f"{where}: no finished stage at {stage_dir} (done.json and state.pt missing); "
                        "train that stage first or point init_from at a finished one")
    done = json.loads((stage_dir / "done.json").read_text())
    if expect is not None and done["stage"] != asdict(expect):
        raise UserError(f"{where}: {stage_dir} was trained as {done['stage']} but this run's stage is {asdict(expect)}; "
                        "use a new run name")
    saved_vocab = (json.loads((stage_dir / VOCAB_FILE).read_text()) if (stage_dir / VOCAB_FILE).is_file()
                   else None)
    if vocab is not None and saved_vocab is not None:
        bad = next((t for t, i in saved_vocab.items() if vocab.get(t) != i), None)
        if bad is not None:
            raise UserError(f"{where}: {stage_dir} was trained with another tokenizer (token {bad!r} is id "
                            f"{saved_vocab[bad]} there, {vocab.get(bad)} here); give this run that run's tokenizer "
                            "(tokenizer.path: RUN/tokenizer, or model.backbone: hf:RUN/model)")
    state = torch.load(stage_dir / "state.pt", map_location="cpu", weights_only=True)
    own = model.state_dict()
    # PEFT keeps a frozen original beside a saved module's trained copy: the copy takes the weights.
    by_bare = {bare_name(k): k for k in own if ".original_module." not in k}
    mapped = {}
    for k, v in state.items():
        mine = by_bare.get(k)
        for a, b in _LLM_PREFIXES:
            if mine is None and k.startswith(a):
                mine = by_bare.get(b + k[len(a):])
        if mine is not None and _grown_rows(own[mine], v, saved_vocab):
            v = torch.cat([v.to(own[mine].dtype), own[mine][len(v):].detach().cpu()])
        if mine is None or own[mine].shape != v.shape:
            got = "absent" if mine is None else f"shape {tuple(own[mine].shape)}"
            raise UserError(f"{where}: {stage_dir} does not fit this model ({k}: saved {tuple(v.shape)}, here {got}); "
                            "the earlier stage must use the same backbone, tower and shapes")
        mapped[mine] = v
    model.load_state_dict(mapped, strict=False)
    return done
