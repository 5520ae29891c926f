"""The ``mistral-vision`` command: thin subcommands over library calls.

Each subcommand is one function, registered with its arguments by the module of its group
(``data`` files, ``select``, ``runs``, ``tokenizer``, ``api``, ``compare``); this module only assembles the
parser and turns user errors into one line and exit code 2 (``--debug`` shows the traceback).
Not for: any work of its own; every command calls the library.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError


def build_parser() -> argparse.ArgumentParser:
    from . import api_cmd, compare_cmd, data_cmds, run_cmds, select_cmd, serve_cmd, tokenizer_cmd

    ap = argparse.ArgumentParser(prog="mistral-vision", description="Teach text LLMs to see, and measure it.")
    ap.add_argument("--debug", action="store_true", help="show tracebacks for user errors")
    ap.add_argument("--version", action="version", version=f"mistral-vision {version()}")
    sub = ap.add_subparsers(dest="command", required=True)
    # The order of `mistral-vision --help`: data files, selection, runs, the API, tokenizers, studies.
    data_cmds.register(sub)
    select_cmd.register(sub)
    run_cmds.register(sub)
    serve_cmd.register(sub)
    api_cmd.register(sub)
    tokenizer_cmd.register(sub)
    compare_cmd.register(sub)
    return ap


def version() -> str:
    """The installed distribution's version (pyproject.toml), else the package's own."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("mistral-vision")
    except PackageNotFoundError:          # run from a source tree without installing
        from .. import __version__

        return __version__


def quiet_libraries() -> None:
    """Our own progress bars and log lines say what is happening; silence the libraries' ones."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "chat" and not args.question and not extra[0].startswith("-"):
        args.question = " ".join(extra)      # `chat RUN --image F "question"`: the question after the options
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if getattr(args, "quiet", False):     # commands that load models set it (set_defaults(quiet=True))
            quiet_libraries()
        return args.func(args) or 0
    except UserError as e:
        if args.debug:
            raise
        print(f"mistral-vision: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mistral-vision: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
