import json

import pytest

from mistral_vision.chatfile import check_file, load_chat_file, reformat_file
from mistral_vision.cli import main
from mistral_vision.errors import UserError

GOOD = {"messages": [{"role": "user", "content": "art"}, {"role": "assistant", "content": "7"}]}


def write(path, lines):
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
    return path


@pytest.mark.parametrize("bad,msg", [
    ("{not json", "invalid JSON"),
    ({"messages": []}, "missing or empty 'messages'"),
    ({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "7"}]}, "unknown role 'robot'"),
    ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "7"}]}, "non-empty string"),
    ({"messages": [{"role": "user", "content": "x"}]}, "must be from the assistant"),
    ({"messages": [{"role": "system", "content": "a"}, {"role": "system", "content": "b"},
                   {"role": "user", "content": "x"}, {"role": "assistant", "content": "7"}]}, "2 system messages"),
    ({"messages": [{"role": "assistant", "content": "7"}]}, "no user message"),
])
def test_each_rule_reports_its_line(tmp_path, bad, msg):
    f = write(tmp_path / "f.jsonl", [GOOD, bad, GOOD])
    res = check_file(f)
    assert not res.ok
    assert any(n == 2 and msg in m for n, m in res.problems), res.problems
    assert all(n == 2 for n, _ in res.problems)


def test_validate_cli_exit_codes(tmp_path, capsys):
    good = write(tmp_path / "g.jsonl", [GOOD, GOOD])
    assert main(["validate", str(good)]) == 0
    bad = write(tmp_path / "b.jsonl", [GOOD, "{", {"x": 1}])
    assert main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "b.jsonl:2: invalid JSON" in out and "b.jsonl:3: missing or empty 'messages'" in out


def test_reformat_repairs_and_reports(tmp_path):
    f = write(tmp_path / "f.jsonl", [
        GOOD,
        {"conversations": [{"from": "human", "value": "art"}, {"from": "gpt", "value": 7}]},
        {"messages": [{"role": "User", "content": "a"}, {"role": "assistant", "content": "1"},
                      {"role": "user", "content": "trailing"}]},
        "garbage",
        {"messages": [{"role": "user", "content": "no answer"}]},
        "",
    ])
    rep = reformat_file(f, tmp_path / "out.jsonl")
    assert rep.kept == 3 and rep.repaired == 2
    assert [n for n, _ in rep.dropped] == [4, 5]
    assert check_file(tmp_path / "out.jsonl").ok
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[1])["messages"][1]["content"] == "7"


def test_load_refuses_invalid(tmp_path):
    f = write(tmp_path / "f.jsonl", [GOOD, "{"])
    with pytest.raises(UserError, match="line 2: invalid JSON"):
        load_chat_file(f)
