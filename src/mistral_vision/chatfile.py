"""Checking and repairing chat JSONL files in Mistral's fine-tuning format.

Rules (each violation is reported with its 1-based line number): the line is a JSON object;
``messages`` is a non-empty list; every message is an object with a known ``role``
(system, user, assistant, tool) and non-empty string ``content`` (an assistant message may
carry ``tool_calls`` instead); at most one system message, and only first; at least one
user message; the last message is from the assistant. Not for: building samples.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .io import write_jsonl

# Written by `prepare` beside the chat JSONL splits it makes (their rendering settings); `api finetune`
# reads it to know how the files were made. Here, below both, so the API layer need not import pipeline.
PREPARE_FILE = "prepare.json"
ROLES = ("system", "user", "assistant", "tool")
ROLE_ALIASES = {"human": "user", "gpt": "assistant", "bot": "assistant", "model": "assistant",
                "ai": "assistant", "sys": "system"}


@dataclass
class FileCheck:
    n_lines: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)

    @property
    def ok(self) -> bool:
        return not self.problems and self.n_lines > 0


def sample_problems(obj) -> list[str]:
    """Everything wrong with one parsed line (empty list: valid)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return ["missing or empty 'messages' list"]
    out = []
    n_system = 0
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            out.append(f"message {i}: expected an object")
            continue
        role = m.get("role")
        if role not in ROLES:
            out.append(f"message {i}: unknown role {role!r} (known: {', '.join(ROLES)})")
        content = m.get("content")
        has_tools = role == "assistant" and bool(m.get("tool_calls"))
        if not has_tools and (not isinstance(content, str) or not content.strip()):
            out.append(f"message {i}: content must be a non-empty string")
        if role == "system":
            n_system += 1
            if i != 0:
                out.append(f"message {i}: the system message must come first")
    if n_system > 1:
        out.append(f"{n_system} system messages (at most one allowed)")
    if not any(isinstance(m, dict) and m.get("role") == "user" for m in msgs):
        out.append("no user message")
    last = msgs[-1]
    if isinstance(last, dict) and last.get("role") != "assistant":
        out.append(f"last message is from {last.get('role')!r}, must be from the assistant")
    return out


def _lines(path: Path):
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    with open(path, "r", encoding="utf-8", errors="strict") as f:
        try:
            for lineno, line in enumerate(f, 1):
                yield lineno, line
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text ({e})") from None


def check_file(path: str | Path) -> FileCheck:
    path = Path(path)
    res = FileCheck()
    for lineno, line in _lines(path):
        res.n_lines += 1
        if not line.strip():
            res.problems.append((lineno, "empty line"))
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            res.problems.append((lineno, f"invalid JSON: {e.msg} at column {e.colno}"))
            continue
        res.problems.extend((lineno, p) for p in sample_problems(obj))
    if res.n_lines == 0:
        res.problems.append((0, "file is empty"))
    return res


def repair_sample(obj):
    """Best-effort repair of one sample; returns (sample, changes) or raises ValueError(reason)."""
    changes = []
    if isinstance(obj, list):
        obj, _ = {"messages": obj}, changes.append("wrapped bare message list")
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    msgs = obj.get("messages")
    if msgs is None and isinstance(obj.get("conversations"), list):   # ShareGPT style
        msgs = [{"role": m.get("from"), "content": m.get("value")} for m in obj["conversations"] if isinstance(m, dict)]
        changes.append("converted 'conversations' to 'messages'")
    if not isinstance(msgs, list) or not msgs:
        raise ValueError("missing or empty 'messages' list")
    fixed, systems = [], []
    for m in msgs:
        if not isinstance(m, dict):
            raise ValueError("a message is not an object")
        role = str(m.get("role", "")).strip().lower()
        role = ROLE_ALIASES.get(role, role)
        if role != m.get("role"):
            changes.append(f"role {m.get('role')!r} -> {role!r}")
        if role not in ROLES:
            raise ValueError(f"unknown role {m.get('role')!r}")
        content = m.get("content")
        if isinstance(content, (int, float)) and not isinstance(content, bool):
            content, _ = str(content), changes.append("numeric content -> string")
        if not isinstance(content, str) or not content.strip():
            if role == "system":
                changes.append("dropped empty system message")
                continue
            raise ValueError(f"{role} message with empty or non-string content")
        if role == "system":
            systems.append(content)
            continue
        fixed.append({"role": role, "content": content})
    if len(systems) > 1:
        changes.append(f"merged {len(systems)} system messages")
    while fixed and fixed[-1]["role"] != "assistant":
        fixed.pop()
        changes.append("dropped trailing non-assistant message")
    if not any(m["role"] == "user" for m in fixed) or not fixed:
        raise ValueError("no user message followed by an assistant answer")
    if systems:
        fixed.insert(0, {"role": "system", "content": "\n".join(systems)})
    out = {k: v for k, v in obj.items() if k not in ("messages", "conversations")}
    out["messages"] = fixed
    assert not sample_problems(out), sample_problems(out)
    return out, changes


@dataclass
class RepairReport:
    kept: int = 0
    repaired: int = 0
    dropped: list[tuple[int, str]] = field(default_factory=list)


def reformat_file(path: str | Path, out: str | Path) -> RepairReport:
    """Write every keepable sample of ``path`` to ``out``; report each one not kept."""
    path = Path(path)
    rep, samples = RepairReport(), []
    for lineno, line in _lines(path):
        text = line.strip().lstrip("\ufeff")
        if not text:
            continue  # blank lines carry no sample
        try:
            obj = json.loads(text)
            if not sample_problems(obj):
                sample, changes = obj, []
            else:
                sample, changes = repair_sample(obj)
        except json.JSONDecodeError as e:
            rep.dropped.append((lineno, f"invalid JSON: {e.msg} at column {e.colno}"))
            continue
        except ValueError as e:
            rep.dropped.append((lineno, str(e)))
            continue
        samples.append(sample)
        rep.kept += 1
        rep.repaired += bool(changes)
    write_jsonl(out, samples)
    return rep


def require_valid(path: str | Path) -> FileCheck:
    """Refuse an invalid chat JSONL with its first problems' line numbers (one line)."""
    res = check_file(path)
    if not res.ok:
        head = "; ".join(f"line {n}: {p}" for n, p in res.problems[:3])
        more = f" (+{len(res.problems) - 3} more)" if len(res.problems) > 3 else ""
        raise UserError(f"{path}: invalid chat JSONL: {head}{more}; run `mistral-vision validate {path}`")
    return res


def load_chat_file(path: str | Path) -> list[dict]:
    """Load a valid chat JSONL; refuse an invalid one with its first problems' line numbers."""
    require_valid(path)
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]
