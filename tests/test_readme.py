"""The README stays a five-minute read whose links and commands are true.

README.md is at most 200 lines (the detail lives in docs/); every relative link in README.md and
docs/*.md points to a file that exists; the README's command table names exactly the subcommands the
CLI has (sub-subcommands such as ``api start`` included), so a renamed, removed or new command shows here.
"""
import re
from pathlib import Path

import pytest

from mistral_vision.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_LINES = 200

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)")          # [text](target "title"), images too
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")              # https:, mailto:, ...


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links outside code, without their #anchor; URLs and in-page anchors left out."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)           # fenced code
    text = re.sub(r"`[^`\n]*`", "", text)                       # inline code: `[--set k=v] (...)` is no link
    targets = (m.group(1) for m in LINK.finditer(text))
    return [t.split("#")[0] for t in targets if not SCHEME.match(t) and not t.startswith("#")]


def table_commands(text: str) -> list[tuple[str, ...]]:
    """(command,) or (command, sub) for each `mistral-vision ...` in the first cell of the "## Commands" table."""
    section = text.split("\n## Commands", 1)[1].split("\n## ", 1)[0]
    found = []
    for row in section.splitlines():
        if not row.startswith("| `mistral-vision"):
            continue
        cell = re.split(r"(?<!\\)\|", row)[1]                   # "\|" inside a cell is an escaped bar
        for m in re.finditer(r"mistral-vision ([a-z][a-z-]*)((?: [a-z]+(?:\\\|[a-z]+)+)?)", cell):
            subs = m.group(2).strip().split("\\|") if m.group(2) else []
            found += [(m.group(1), s) for s in subs] or [(m.group(1),)]
    return found


def subcommands(parser) -> dict:
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return actions[0].choices if actions else {}


def test_readme_is_a_five_minute_read():
    n = len(README.read_text().splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines (at most {MAX_LINES}): move detail to docs/"


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_to_existing_files(doc):
    links = relative_links(doc.read_text())
    missing = [t for t in links if not (doc.parent / t).exists()]
    assert not missing, f"{doc.relative_to(ROOT)}: links to files that do not exist: {missing}"


def test_the_link_finder_sees_links_and_skips_code():
    text = "[a](docs/x.md#y) ![img](fig.png) [web](https://e.org) [here](#top) `[--set k=v] (not)`\n```\n[b](c.md)\n```"
    assert relative_links(text) == ["docs/x.md", "fig.png"]


COMMANDS = table_commands(README.read_text())


def test_the_command_table_lists_every_subcommand():
    documented = {c[0] for c in COMMANDS}
    missing = sorted(set(subcommands(build_parser())) - documented)
    assert not missing, f"README's command table lacks: {missing}"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_each_command_in_the_table_exists(command):
    choices = subcommands(build_parser())
    assert command[0] in choices, f"README's command table names `mistral-vision {command[0]}`, which does not exist"
    if len(command) == 2:
        assert command[1] in subcommands(choices[command[0]]), f"no `mistral-vision {' '.join(command)}`"
