"""Parallel conversion gives exactly the serial output, rejects and warnings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from swebox.tasks.convert import convert_file
from swebox.tasks.parallel import convert_parallel

FORMATS = [("swebox", "jsonl"), ("openhands", "jsonl"), ("swebench", "jsonl"),
           ("rllm", "parquet"), ("skyrl", "parquet")]


@pytest.fixture
def mixed(realdata: Path, tmp_path: Path) -> Path:
    """Real SWE-bench rows repeated with new ids, plus a broken line and a duplicate."""
    rows = [json.loads(line) for name in ("swebench_lite_dev.jsonl",
                                          "swebench_lite_test_sweagent_reencoded.jsonl")
            for line in (realdata / "datasets" / name).read_text().splitlines()]
    lines = []
    for i in range(900):
        row = dict(rows[i % len(rows)])
        row["instance_id"] = f"{row['instance_id']}-{i}"
        lines.append(json.dumps(row))
    lines.insert(300, "{broken")
    lines.insert(600, lines[10])  # a duplicate of an earlier row
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join(lines) + "\n")
    return f


@pytest.mark.parametrize(("fmt", "ext"), FORMATS)
def test_parallel_output_is_byte_identical(mixed: Path, tmp_path: Path, fmt: str,
                                           ext: str) -> None:
    from swebox.tasks.writers import WriteOptions

    opts = WriteOptions(batch_rows=128)  # many chunks, and row groups across chunk edges
    serial = convert_file(mixed, tmp_path / f"s.{ext}", fmt, workers=1, write_opts=opts)
    parallel = convert_file(mixed, tmp_path / f"p.{ext}", fmt, workers=2, write_opts=opts)
    assert (tmp_path / f"s.{ext}").read_bytes() == (tmp_path / f"p.{ext}").read_bytes()
    assert serial.written == parallel.written == 900
    assert serial.rejected == parallel.rejected == 2
    assert Path(serial.rejects_path or "").read_text().replace("s." + ext, "") == \
        Path(parallel.rejects_path or "").read_text().replace("p." + ext, "")
    rejects = [json.loads(x) for x in Path(parallel.rejects_path or "").read_text().splitlines()]
    assert rejects[0]["where"].endswith(":301") and "JSON" in rejects[0]["reason"]
    assert rejects[1]["where"].endswith(":601") and "duplicate" in rejects[1]["reason"]


def test_parallel_csv_with_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "sheet.csv"
    rows = ["instance_id,repo,base_commit,version,image_storage_uri,problem_statement"]
    rows += [f"{i},acme/tool,abc{i},{'1.0' if i % 2 else i},acme_tool:{i},bug {i}"
             for i in range(200)]
    f.write_text("\r\n".join(rows) + "\r\n")
    with caplog.at_level(logging.WARNING, logger="swebox.tasks"):
        report = convert_file(f, tmp_path / "out.jsonl", "openhands", workers=2)
    assert report.written == 200 and report.warnings == 100
    out = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["instance_id"] for o in out] == [str(i) for i in range(200)]
    assert all(o["version"] == o["instance_id"] for o in out)


def test_interrupted_parallel_conversion_leaves_no_output(mixed: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_bytes(b"previous output")

    class Boom(Exception):
        pass

    class Rejects:
        def write(self, _: str) -> None:
            raise Boom  # fails on the first reject, mid-conversion

    with pytest.raises(Boom):
        convert_parallel(mixed, target, "rllm", Rejects(), workers=2)  # type: ignore[arg-type]
    assert target.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.jsonl", "out.parquet"]
