"""Writing task files back in their own format with image names swapped (seed 000, step 4)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from swebox.errors import BadInput
from swebox.tasks.rewrite import replace_values

LONG = "vmvm-registry.fbinfra.net/repomate_image_activ_pytest/randovania_randovania:bd8e6fa8"
SHORT = "randovania_randovania:bd8e6fa8"


def test_csv_sheet_keeps_columns_and_multiline_cells(tmp_path: Path) -> None:
    src = tmp_path / "sheet.csv"
    with src.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instance_id", "repo", "image_storage_uri", "problem_statement"])
        w.writerow(["1001", "randovania/randovania", LONG, "It breaks\nwhen, \"quoted\""])
        w.writerow(["1002", "other/repo", "other:v1", "fine"])
    out = tmp_path / "out.csv"
    report = replace_values(src, out, {LONG: SHORT})
    assert (report.rows, report.changed_rows, report.replaced) == (2, 1, 1)
    rows = list(csv.DictReader(out.open(newline="")))
    assert rows[0]["image_storage_uri"] == SHORT
    assert rows[0]["problem_statement"] == "It breaks\nwhen, \"quoted\""
    assert rows[1]["image_storage_uri"] == "other:v1"
    assert list(rows[0]) == ["instance_id", "repo", "image_storage_uri", "problem_statement"]


def test_jsonl_untouched_lines_are_byte_equal(realdata: Path, tmp_path: Path) -> None:
    src = realdata / "datasets" / "swebench_lite_dev.jsonl"
    lines = src.read_bytes().splitlines(keepends=True)
    first = json.loads(lines[0])
    out = tmp_path / "out.jsonl"
    report = replace_values(src, out, {first["instance_id"]: "renamed"})
    assert report.changed_rows == 1
    got = out.read_bytes().splitlines(keepends=True)
    assert len(got) == len(lines) and got[1:] == lines[1:]
    changed = json.loads(got[0])
    assert changed["instance_id"] == "renamed"
    assert {k: v for k, v in changed.items() if k != "instance_id"} == \
        {k: v for k, v in first.items() if k != "instance_id"}


def test_nested_json_array(realdata: Path, tmp_path: Path) -> None:
    src = tmp_path / "tasks.json"
    src.write_text(json.dumps([{"id": "a", "env": {"image": LONG}}, {"id": "b"}]))
    out = tmp_path / "out.json"
    assert replace_values(src, out, {LONG: SHORT}).replaced == 1
    assert json.loads(out.read_text())[0]["env"]["image"] == SHORT


def test_parquet_keeps_schema(tmp_path: Path) -> None:
    src = tmp_path / "tasks.parquet"
    table = pa.table({"instance_id": ["a", "b", "c"], "image": [LONG, "x:1", LONG],
                      "n": [1, 2, 3]})
    pq.write_table(table, src)
    out = tmp_path / "out.parquet"
    report = replace_values(src, out, {LONG: SHORT})
    assert (report.rows, report.changed_rows) == (3, 2)
    got = pq.read_table(out)
    assert got.schema == table.schema
    assert got.column("image").to_pylist() == [SHORT, "x:1", SHORT]
    assert got.column("n").to_pylist() == [1, 2, 3]


def test_in_place_and_bad_input(tmp_path: Path) -> None:
    src = tmp_path / "t.jsonl"
    src.write_text(json.dumps({"image": LONG}) + "\n")
    replace_values(src, src, {LONG: SHORT})  # the output is written aside, then renamed
    assert json.loads(src.read_text())["image"] == SHORT
    with pytest.raises(BadInput, match="no such file"):
        replace_values(tmp_path / "absent.csv", tmp_path / "o.csv", {})
    with pytest.raises(BadInput, match="same kind of name"):
        replace_values(src, tmp_path / "o.csv", {})
    odd = tmp_path / "t.xml"
    odd.write_text("<x/>")
    with pytest.raises(BadInput, match="cannot write this format back"):
        replace_values(odd, tmp_path / "o.xml", {})
