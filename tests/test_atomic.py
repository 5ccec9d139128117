"""repair_tail: a line cut short by a crash is removed before the next append."""

from __future__ import annotations

from pathlib import Path

from swebox.atomic import repair_tail


def test_a_torn_last_line_is_cut(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c": ')
    repair_tail(p)
    assert p.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    with open(p, "ab") as f:  # the next append starts a line of its own
        f.write(b'{"d": 4}\n')
    assert p.read_bytes().splitlines()[-1] == b'{"d": 4}'


def test_whole_files_and_long_torn_lines(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_bytes(b'{"a": 1}\n')
    repair_tail(p)
    assert p.read_bytes() == b'{"a": 1}\n'
    p.write_bytes(b'{"a": 1}\n' + b"x" * 300_000)  # the cut line spans several read chunks
    repair_tail(p)
    assert p.read_bytes() == b'{"a": 1}\n'
    p.write_bytes(b"no newline at all")
    repair_tail(p)
    assert p.read_bytes() == b""
    repair_tail(tmp_path / "missing.jsonl")  # nothing to do, no error
