"""Atomic writes and append-only JSONL: nothing half-written, a torn last line repaired."""
import json

import pytest

from mistral_vision.io import (JsonlAppender, atomic_dir, atomic_path, read_jsonl_tolerant, write_json,
                               write_jsonl, write_text)


class Boom(Exception):
    pass


def test_atomic_path_leaves_nothing_when_the_block_raises(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            assert tmp.parent == target.parent and tmp != target
            raise Boom
    assert list((tmp_path / "sub").iterdir()) == []


def test_atomic_path_keeps_the_old_file_when_the_block_raises(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise Boom
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_round_trips_and_leaves_no_temp_file(tmp_path):
    obj = {"a": [1, 2.5, None], "b": {"c": "\u00e9\n"}, "d": True, "e": None, "f": ""}
    write_json(tmp_path / "x.json", obj)
    assert json.loads((tmp_path / "x.json").read_text()) == obj
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_dir_replaces_an_existing_folder_only_on_success(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(Boom):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            raise Boom
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]        # the temporary folder is gone
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert (target / "old.txt").is_file()                   # untouched until the block completes
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


@pytest.mark.parametrize("torn", ['{"i": 2, "x"', '{"i": 2}', "not json\n"])
def test_read_jsonl_tolerant_cuts_a_torn_last_line_and_appending_continues(tmp_path, torn):
    path = tmp_path / "p.jsonl"
    write_jsonl(path, [{"i": 0}, {"i": 1}])
    with open(path, "a") as f:
        f.write(torn)                          # killed mid-write: no newline, or not JSON
    assert read_jsonl_tolerant(path) == [{"i": 0}, {"i": 1}]
    assert path.read_text() == '{"i": 0}\n{"i": 1}\n'
    with JsonlAppender(path) as log:
        log.write([{"i": 2}])
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_read_jsonl_tolerant_of_a_missing_file_is_empty(tmp_path):
    assert read_jsonl_tolerant(tmp_path / "none.jsonl") == []
    assert not (tmp_path / "none.jsonl").exists()


def test_jsonl_appender_appends_batches_across_openings(tmp_path):
    path = tmp_path / "deep" / "p.jsonl"
    with JsonlAppender(path) as log:
        log.write([{"i": 0, "s": "\u00e9"}, {"i": 1}])
        assert len(path.read_text(encoding="utf-8").splitlines()) == 2      # flushed per batch, before close
    with JsonlAppender(path) as log:
        log.write([{"i": 2}])
        log.write([])
    assert read_jsonl_tolerant(path) == [{"i": 0, "s": "\u00e9"}, {"i": 1}, {"i": 2}]
