"""`swebox tasks ...` as a user runs it, and round trips through every format that can."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from swebox.tasks.io import Reject
from swebox.tasks.model import Task
from swebox.tasks.readers import read_tasks


def swebox(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swebox.cli", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def _read(path: Path) -> list[Task]:
    items = list(read_tasks(path))
    assert not [i for i in items if isinstance(i, Reject)]
    return [i for i in items if isinstance(i, Task)]


ALL_REAL = ("swebench_lite_dev.jsonl", "swebench_lite_test_sweagent_reencoded.jsonl",
            "swesmith_pandas-dev__pandas.95280573.pr_53652.json",
            "multiswebench_java_2rows.jsonl", "r2egym_lite_aiohttp_f0d74880_PARTIAL.json")


@pytest.mark.parametrize("name", ALL_REAL)
@pytest.mark.parametrize("fmt", ["swebox", "rllm", "skyrl"])
def test_lossless_round_trip(realdata: Path, tmp_path: Path, name: str, fmt: str) -> None:
    """read -> write -> read gives equal tasks, whatever the source family."""
    original = _read(realdata / "datasets" / name)
    out = tmp_path / ("out.parquet" if fmt in ("rllm", "skyrl") else "out.jsonl")
    done = swebox("tasks", "convert", str(realdata / "datasets" / name), "--to", fmt,
                  "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert _read(out) == original


@pytest.mark.parametrize("name", ["swebench_lite_dev.jsonl",
                                  "swebench_lite_test_sweagent_reencoded.jsonl"])
def test_swebench_round_trip(realdata: Path, tmp_path: Path, name: str) -> None:
    original = _read(realdata / "datasets" / name)
    for target in ("out.jsonl", "out.json"):
        assert swebox("tasks", "convert", str(realdata / "datasets" / name), "--to",
                      "swebench", "-o", str(tmp_path / target)).returncode == 0
        assert _read(tmp_path / target) == original


def test_graphplanner_keeps_what_it_can(realdata: Path, tmp_path: Path) -> None:
    src = realdata / "datasets" / "r2egym_lite_aiohttp_f0d74880_PARTIAL.json"
    out = tmp_path / "gp.jsonl"
    assert swebox("tasks", "convert", str(src), "--to", "graphplanner", "-o", str(out),
                  "--max-steps", "9").returncode == 0
    line = json.loads(out.read_text())
    assert line["max_steps"] == 9 and line["sandbox"]["docker_image"].startswith("namanjain12/")
    ds = json.loads((out.parent / line["sandbox"]["r2e_ds_json"]).read_text())
    assert ds["repo_name"] == "aiohttp" and len(json.loads(ds["expected_output_json"])) == 64
    (back,) = _read(out)
    assert back.instance_id == "aiohttp__f0d74880deec" and back.image == ds["docker_image"]


def test_convert_with_rejects_exits_nonzero_and_keeps_good_rows(realdata: Path,
                                                               tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    good = (realdata / "datasets" / "swebench_lite_dev.jsonl").read_text().splitlines()
    src.write_text("\n".join([good[0], "{oops", good[1], good[0]]) + "\n")
    out = tmp_path / "out.parquet"
    done = swebox("tasks", "convert", str(src), "--to", "rllm", "-o", str(out))
    assert done.returncode == 2
    assert "2 row(s) rejected" in done.stderr and f"{src}:2" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(_read(out)) == 2
    rejects = (tmp_path / "out.parquet.rejects.jsonl").read_text().splitlines()
    assert [json.loads(r)["where"] for r in rejects] == [f"{src}:2", f"{src}:4"]


def test_forced_format_and_undetectable_input(realdata: Path, tmp_path: Path) -> None:
    src = realdata / "datasets" / "swebench_lite_dev.jsonl"
    done = swebox("tasks", "convert", str(src), "--from", "swegym", "--to", "swebox",
                  "-o", str(tmp_path / "o.jsonl"))
    assert done.returncode == 0
    assert {t.source_format for t in _read(tmp_path / "o.jsonl")} == {"swegym"}
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"title": "x"}\n')
    done = swebox("tasks", "convert", str(odd), "--to", "swebox", "-o", str(tmp_path / "x"))
    assert done.returncode == 2 and "--from" in done.stderr
    done = swebox("tasks", "convert", str(src), "--to", "nope", "-o", str(tmp_path / "x"))
    assert done.returncode == 2 and "unknown output format" in done.stderr


def test_show_stats_images(realdata: Path, tmp_path: Path) -> None:
    src = realdata / "datasets" / "swebench_lite_test_sweagent_reencoded.jsonl"
    done = swebox("tasks", "show", "django__django-16255", "--tasks", str(src))
    assert done.returncode == 0
    shown = json.loads(done.stdout)
    assert shown["repo"] == "django/django"
    assert shown["test_spec"]["source"] == "swebench-table"
    assert shown["test_spec"]["command"].startswith("./tests/runtests.py --verbosity 2 ")
    assert swebox("tasks", "show", "nope", "--tasks", str(src)).returncode == 2
    stats = json.loads(swebox("tasks", "stats", str(src), "--json").stdout)
    assert stats["tasks"] == 2 and stats["by_repo"] == {"django/django": 1, "sympy/sympy": 1}
    # every real row has a test spec: none is counted missing
    assert "test spec" not in stats["missing"] and stats["by_spec"] == {"swebench-table": 2}
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rewrite]]\nmatch = "swebench/*"\nlocal = "{repository}:{tag}"\n'
                     'store = "s3://bucket/images/{repository}-{tag}.tar"\n')
    rows = [json.loads(x) for x in swebox("tasks", "images", str(src), "--rules", str(rules),
                                          "--json").stdout.splitlines()]
    assert rows[0] == {
        "instance_id": "django__django-16255",
        "image": "swebench/sweb.eval.x86_64.django_1776_django-16255:latest",
        "local": "sweb.eval.x86_64.django_1776_django-16255:latest",
        "object": "s3://bucket/images/sweb.eval.x86_64.django_1776_django-16255-latest.tar"}


def test_hugging_face_dataset_directory(realdata: Path, tmp_path: Path) -> None:
    """`--hf` through the datasets package, offline, on a local dataset directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row = json.loads((realdata / "datasets" / "r2egym_lite_aiohttp_f0d74880_PARTIAL.json"
                      ).read_text())
    row["commit_hash"] = row.pop("git_commit_hash")
    row["expected_output_json"] = json.dumps(row["expected_output_json"])
    rows = [{**row, "commit_hash": f"{i:02d}{row['commit_hash'][2:]}"} for i in range(3)]
    (tmp_path / "ds" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ds" / "data" / "train-0.parquet")
    out = tmp_path / "out.jsonl"
    done = swebox("tasks", "convert", "--hf", str(tmp_path / "ds"), "--split", "train",
                  "--to", "swebox", "-o", str(out),
                  env={"HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert done.returncode == 0, done.stderr
    assert [t.instance_id for t in _read(out)] == \
        [f"aiohttp__{i:02d}d74880deec" for i in range(3)]
