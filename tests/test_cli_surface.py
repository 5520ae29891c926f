"""The command's own surface: --version, help for every subcommand."""
import pytest

from mistral_vision import __version__
from mistral_vision.cli import build_parser, main


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"mistral-vision {__version__}"


def test_every_subcommand_has_help_and_a_function():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == ["api", "chat", "compare", "evaluate", "export", "predict", "prepare", "pretrain",
                                   "reformat", "report", "run", "select", "serve", "tokenizer", "train", "validate"]
    for name, parser in sub.choices.items():
        assert parser.description or any(c.dest == name for c in sub._choices_actions), name
        assert callable(parser.get_default("func")), name
