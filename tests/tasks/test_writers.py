"""Export writers: output shape read back with the real consumers' loaders (json, pyarrow),
determinism, atomicity, streaming memory, and round trips on real dataset rows."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from swebox.tasks.io import Reject
from swebox.tasks.model import Task
from swebox.tasks.readers import read_tasks
from swebox.tasks.residual import rebuild
from swebox.tasks.writers import WRITERS, WriteOptions, write_tasks

SWEBENCH_FILES = ("swebench_lite_dev.jsonl", "swebench_lite_test_sweagent_reencoded.jsonl")
ALL_FILES = (*SWEBENCH_FILES, "multiswebench_java_2rows.jsonl",
             "r2egym_lite_aiohttp_f0d74880_PARTIAL.json",
             "swesmith_pandas-dev__pandas.95280573.pr_53652.json")
# (format, output file name): every writer, and SWE-bench's JSON-array form.
OUTPUTS = [("swebox", "out.jsonl"), ("openhands", "out.jsonl"), ("rllm", "out.parquet"),
           ("skyrl", "out.parquet"), ("graphplanner", "out.jsonl"), ("swebench", "out.jsonl"),
           ("swebench", "out.json")]
assert {fmt for fmt, _ in OUTPUTS} == set(WRITERS)
MB = 1024 * 1024


def _read(path: Path, fmt: str | None = None) -> list[Task]:
    items = list(read_tasks(path, fmt))
    rejects = [i for i in items if isinstance(i, Reject)]
    assert not rejects, rejects
    return [i for i in items if isinstance(i, Task)]


@pytest.fixture(scope="module")
def real_tasks(realdata: Path) -> list[Task]:
    tasks = [t for name in ALL_FILES for t in _read(realdata / "datasets" / name)]
    assert {t.source_format for t in tasks} == {"swebench", "multiswebench", "r2e", "swesmith"}
    return tasks


def _small(i: int) -> Task:
    return Task(instance_id=f"owner__repo-{i}", repo="owner/repo", base_commit=f"{i:040x}",
                problem_statement=f"issue {i}: " + "fix it " * 40, image=f"reg.example/img:{i}",
                local_image=f"img:{i}", fail_to_pass=["t.py::a"], pass_to_pass=["t.py::b"],
                extra={"hints_text": "see t.py"})


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# -- OpenHands ---------------------------------------------------------------------------------

OPENHANDS_KEYS = ["instance_id", "repo", "base_commit", "version", "problem_statement",
                  "image_storage_uri", "FAIL_TO_PASS", "PASS_TO_PASS", "hints_text", "language"]


def test_openhands_rows(real_tasks: list[Task], tmp_path: Path) -> None:
    local = Task(instance_id="acme__widget-7", repo="acme/widget", base_commit="c0ffee",
                 image="registry.example:5000/team/widget:7", local_image="widget:7")
    tasks = [*real_tasks, local]
    out = tmp_path / "oh.jsonl"
    assert write_tasks(tasks, out, "openhands") == len(tasks)
    rows = _lines(out)
    for task, row in zip(tasks, rows, strict=True):
        assert list(row) == OPENHANDS_KEYS
        assert row["instance_id"] == task.instance_id
        assert row["version"] == (task.version or task.instance_id)
        assert row["image_storage_uri"] == task.run_image
        assert isinstance(row["FAIL_TO_PASS"], str)
        assert json.loads(row["FAIL_TO_PASS"]) == task.fail_to_pass
        assert json.loads(row["PASS_TO_PASS"]) == task.pass_to_pass
        assert row["hints_text"] == task.extra.get("hints_text", "")
        assert row["language"] == task.language
    assert rows[-1]["image_storage_uri"] == "widget:7"
    assert rows[-1]["version"] == "acme__widget-7"
    assert rows[-1]["hints_text"] == ""
    # The OpenHands reader takes the file back; it rejects R2E's bare repo name, since
    # OpenHands wants owner/repo.
    back = list(read_tasks(out, "openhands"))
    for task, got in zip(tasks, back, strict=True):
        if "/" not in task.repo:
            assert isinstance(got, Reject)
            continue
        assert isinstance(got, Task)
        assert (got.instance_id, got.repo, got.base_commit, got.problem_statement, got.image) == \
            (task.instance_id, task.repo, task.base_commit, task.problem_statement,
             task.run_image)


# -- rLLM -------------------------------------------------------------------------------------

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
RLLM_INFO = ["instance_id", "docker_image", "image_name", "repo_name", "commit_hash",
             "problem_statement", "expected_output_json", "parsed_commit_content", "repo",
             "base_commit", "patch", "test_patch", "hints_text", "created_at", "version",
             "FAIL_TO_PASS", "PASS_TO_PASS", "environment_setup_commit", "split", "index",
             "swebox_task"]


def test_rllm_columns(real_tasks: list[Task], tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    opts = WriteOptions(split="test", batch_rows=3)
    assert write_tasks(real_tasks, out, "rllm", opts) == len(real_tasks)
    pf = pq.ParquetFile(out)
    assert pf.metadata.num_row_groups == 3  # 8 rows in batches of 3, one schema for all
    schema = pf.schema_arrow
    assert schema.names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert schema.field("data_source").type == pa.string()
    assert schema.field("prompt").type == MESSAGES
    assert schema.field("reward_model").type == pa.struct(
        [("style", pa.string()), ("ground_truth", pa.string())])
    info_type = schema.field("extra_info").type
    assert [info_type.field(i).name for i in range(info_type.num_fields)] == RLLM_INFO
    for i in range(info_type.num_fields):
        field = info_type.field(i)
        assert field.type == (pa.int64() if field.name == "index" else pa.string()), field.name

    rows = pq.read_table(out).to_pylist()
    for index, (task, row) in enumerate(zip(real_tasks, rows, strict=True)):
        assert row["data_source"] == f"swebox/{task.source_format}"
        assert row["prompt"] == [{"role": "user", "content": task.problem_statement}]
        assert row["ability"] == "coding"
        assert row["reward_model"]["style"] == "rule"
        assert json.loads(row["reward_model"]["ground_truth"]) == {
            "expected_output": task.expected_output, "FAIL_TO_PASS": task.fail_to_pass,
            "PASS_TO_PASS": task.pass_to_pass}
        info = row["extra_info"]
        assert info["instance_id"] == task.instance_id
        assert info["docker_image"] == info["image_name"] == task.run_image
        assert info["repo_name"] == task.repo_name and info["repo"] == task.repo
        assert info["commit_hash"] == info["base_commit"] == task.base_commit
        assert info["patch"] == task.gold_patch and info["test_patch"] == task.test_patch
        assert json.loads(info["FAIL_TO_PASS"]) == task.fail_to_pass
        assert json.loads(info["PASS_TO_PASS"]) == task.pass_to_pass
        if task.expected_output is None:
            assert info["expected_output_json"] == ""
        else:
            assert json.loads(info["expected_output_json"]) == task.expected_output
        assert info["split"] == "test" and info["index"] == index
        assert rebuild(info, info["swebox_task"]) == task
    r2e = next(r for r in rows if r["data_source"] == "swebox/r2e")
    assert len(json.loads(r2e["extra_info"]["expected_output_json"])) == 64
    assert _read(out) == real_tasks  # swebox's rLLM reader takes its own export back


def test_rllm_data_source_option(tmp_path: Path) -> None:
    out = tmp_path / "d.parquet"
    write_tasks([_small(0)], out, "rllm", WriteOptions(data_source="acme/swe"))
    assert pq.read_table(out).column("data_source").to_pylist() == ["acme/swe"]


# -- SkyRL ------------------------------------------------------------------------------------

SKYRL_INSTANCE = ["repo", "instance_id", "base_commit", "patch", "test_patch",
                  "problem_statement", "hints_text", "created_at", "version", "FAIL_TO_PASS",
                  "PASS_TO_PASS", "environment_setup_commit", "image_name", "swebox_task"]


def test_skyrl_columns(real_tasks: list[Task], tmp_path: Path) -> None:
    no_image = Task(instance_id="x__y-1", repo="x/y", problem_statement="p")
    tasks = [*real_tasks, no_image]
    out = tmp_path / "train.parquet"
    assert write_tasks(tasks, out, "skyrl", WriteOptions(env_class="swe")) == len(tasks)
    schema = pq.read_schema(out)
    assert schema.names == ["data_source", "prompt", "env_class", "instance"]
    assert schema.field("prompt").type == MESSAGES
    assert schema.field("instance").type == pa.struct([(k, pa.string()) for k in SKYRL_INSTANCE])

    rows = pq.read_table(out).to_pylist()
    for task, row in zip(tasks, rows, strict=True):
        assert row["data_source"] == f"swebox/{task.source_format}"
        assert row["prompt"] == [{"role": "user", "content": task.problem_statement}]
        assert row["env_class"] == "swe"
        inst = row["instance"]
        assert inst["instance_id"] == task.instance_id
        assert inst["image_name"] == task.run_image
        assert inst["patch"] == task.gold_patch
        assert inst["version"] == (task.version or "")
        assert json.loads(inst["FAIL_TO_PASS"]) == task.fail_to_pass
        assert rebuild(inst, inst["swebox_task"]) == task
    assert rows[-1]["instance"]["image_name"] is None
    assert rows[-1]["instance"]["environment_setup_commit"] == ""
    assert _read(out) == tasks


# -- Graph Planner ----------------------------------------------------------------------------

def test_graphplanner_lines_and_ds_files(real_tasks: list[Task], tmp_path: Path) -> None:
    out = tmp_path / "sub" / "gp.jsonl"
    opts = WriteOptions(max_steps=9, sandbox_backend="docker")
    assert write_tasks(real_tasks, out, "graphplanner", opts) == len(real_tasks)
    assert sorted(p.name for p in out.parent.iterdir()) == ["gp.jsonl", "gp_r2e_ds"]
    rows = _lines(out)
    for task, row in zip(real_tasks, rows, strict=True):
        assert list(row) == ["task_id", "max_steps", "issue", "sandbox"]
        assert row["task_id"] == task.instance_id and row["issue"] == task.problem_statement
        assert row["max_steps"] == 9
        sandbox = row["sandbox"]
        assert sandbox == {"backend": "docker", "docker_image": task.run_image,
                           "workdir": task.workdir, "mounts": {}, "env": {},
                           "r2e_ds_json": sandbox["r2e_ds_json"]}
        ds_path = out.parent / sandbox["r2e_ds_json"]
        assert ds_path.parent == out.parent / "gp_r2e_ds"
        ds = json.loads(ds_path.read_text(encoding="utf-8"))
        assert ds["docker_image"] == task.run_image
        assert ds["repo_name"] == task.repo_name and ds["commit_hash"] == task.base_commit
        assert ds["problem_statement"] == task.problem_statement
        if task.source_format == "r2e":
            assert json.loads(ds["expected_output_json"]) == task.expected_output
            assert ds["git_commit_hash"] == task.extra["git_commit_hash"]  # R2E extra kept
        else:
            assert "expected_output_json" not in ds
            assert not set(task.extra) & set(ds)  # other families' extras stay out

    back = _read(out)
    assert {t.source_format for t in back} == {"graphplanner"}
    assert [(t.instance_id, t.image, t.workdir, t.problem_statement) for t in back] == \
        [(t.instance_id, t.run_image, t.workdir, t.problem_statement) for t in real_tasks]


def test_graphplanner_keeps_its_own_sandbox(tmp_path: Path) -> None:
    line: dict[str, Any] = {"task_id": "gp-1", "max_steps": 12, "issue": "the bug",
            "sandbox": {"backend": "repoenv", "docker_image": "gp/img:1", "workdir": "/repo",
                        "mounts": {"/host": "/box"}, "env": {"K": "V"},
                        "r2e_ds_json": "elsewhere/gp-1.json"}}
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(line) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    write_tasks(_read(src), out, "graphplanner", WriteOptions(max_steps=3,
                                                               sandbox_backend="docker"))
    (row,) = _lines(out)
    assert row["sandbox"].pop("r2e_ds_json") == "out_r2e_ds/gp-1.json"
    del line["sandbox"]["r2e_ds_json"]
    assert row == line


def test_graphplanner_hostile_ids_stay_inside(tmp_path: Path) -> None:
    ids = ["../../etc/x", "a/b", "a_b", "..", ".", "/abs/path", "A", "a", "x" * 400,
           "é/ü", "a\\b", "dup", "dup", ".hidden"]
    out = tmp_path / "out.jsonl"
    tasks = [Task(instance_id=i, problem_statement=f"#{n}") for n, i in enumerate(ids)]
    assert write_tasks(tasks, out, "graphplanner") == len(ids)
    side = (tmp_path / "out_r2e_ds").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out_r2e_ds"]
    rows = _lines(out)
    files = [(tmp_path / r["sandbox"]["r2e_ds_json"]).resolve() for r in rows]
    assert all(f.parent == side and f.is_file() for f in files)
    assert len({f.name.casefold() for f in files}) == len(ids)  # no two tasks share a file
    assert all(len(f.name) < 200 for f in files)
    for n, f in enumerate(files):  # each file holds its own task
        assert json.loads(f.read_text(encoding="utf-8"))["problem_statement"] == f"#{n}"
    assert len(list(side.iterdir())) == len(ids)


def test_graphplanner_replaces_an_old_side_dir(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    write_tasks([_small(1), _small(2)], out, "graphplanner")
    (tmp_path / "out_r2e_ds" / "stale.json").write_text("{}", encoding="utf-8")
    write_tasks([_small(3)], out, "graphplanner")
    assert sorted(_tree(tmp_path / "out_r2e_ds")) == ["owner__repo-3.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out_r2e_ds"]


# -- SWE-bench and swebox round trips on real rows ----------------------------------------------

@pytest.mark.parametrize("name", SWEBENCH_FILES)
@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_swebench_round_trip(realdata: Path, tmp_path: Path, name: str, suffix: str) -> None:
    src = realdata / "datasets" / name
    originals = _lines(src)
    tasks = _read(src)
    out = tmp_path / f"out{suffix}"
    assert write_tasks(tasks, out, "swebench") == len(originals)
    written = _lines(out) if suffix == ".jsonl" else json.loads(out.read_text(encoding="utf-8"))
    assert written == originals
    assert [list(w) for w in written] == [list(o) for o in originals]  # HF key order
    # The test lists are byte-identical to the published encoding.
    assert [w["FAIL_TO_PASS"] for w in written] == [o["FAIL_TO_PASS"] for o in originals]
    assert _read(out) == tasks


def test_swebench_defaults_and_extras(tmp_path: Path) -> None:
    task = Task(instance_id="o__r-1", repo="o/r", base_commit="abc", gold_patch="P",
                fail_to_pass=["a"], extra={"repo": "stale", "note": {"k": [1, 2]}})
    out = tmp_path / "out.jsonl"
    write_tasks([task], out, "swebench")
    (row,) = _lines(out)
    assert list(row)[:12] == ["repo", "instance_id", "base_commit", "patch", "test_patch",
                              "problem_statement", "hints_text", "created_at", "version",
                              "FAIL_TO_PASS", "PASS_TO_PASS", "environment_setup_commit"]
    assert row["repo"] == "o/r"  # the model's value, not an extra's
    assert (row["hints_text"], row["version"], row["environment_setup_commit"]) == \
        ("", "", "abc")
    assert row["FAIL_TO_PASS"] == '["a"]' and row["PASS_TO_PASS"] == "[]"
    assert row["note"] == {"k": [1, 2]}


def test_swebox_jsonl_round_trip(real_tasks: list[Task], tmp_path: Path) -> None:
    out = tmp_path / "tasks.jsonl"
    assert write_tasks(real_tasks, out, "swebox") == len(real_tasks)
    assert _read(out) == real_tasks


# -- every writer: determinism, empty input, atomicity, streaming -----------------------------

@pytest.mark.parametrize(("fmt", "name"), OUTPUTS)
def test_deterministic(real_tasks: list[Task], tmp_path: Path, fmt: str, name: str) -> None:
    trees = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        write_tasks(iter(real_tasks), tmp_path / run / name, fmt)
        trees.append(_tree(tmp_path / run))
    assert trees[0] == trees[1]


@pytest.mark.parametrize(("fmt", "name"), OUTPUTS)
def test_empty_input(tmp_path: Path, fmt: str, name: str) -> None:
    out = tmp_path / name
    assert write_tasks(iter([]), out, fmt) == 0
    if name.endswith(".parquet"):
        assert pq.read_table(out).num_rows == 0
    elif name.endswith(".json"):
        assert json.loads(out.read_text(encoding="utf-8")) == []
    else:
        assert out.read_text(encoding="utf-8") == ""


def _failing(n: int) -> Iterator[Task]:
    for i in range(n):
        yield _small(i)
    raise RuntimeError("source broke")


@pytest.mark.parametrize(("fmt", "name"), OUTPUTS)
def test_failure_leaves_nothing_behind(tmp_path: Path, fmt: str, name: str) -> None:
    out = tmp_path / name
    opts = WriteOptions(batch_rows=2)  # parquet row groups are written before the failure
    with pytest.raises(RuntimeError, match="source broke"):
        write_tasks(_failing(5), out, fmt, opts)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("fmt", "name"), OUTPUTS)
def test_failure_keeps_the_old_output(tmp_path: Path, fmt: str, name: str) -> None:
    out = tmp_path / name
    write_tasks([_small(100), _small(101)], out, fmt)
    names, before = sorted(tmp_path.iterdir()), _tree(tmp_path)
    with pytest.raises(RuntimeError, match="source broke"):
        write_tasks(_failing(5), out, fmt, WriteOptions(batch_rows=2))
    assert sorted(tmp_path.iterdir()) == names  # no temp file or directory left
    assert _tree(tmp_path) == before


STREAM_TASKS = 20_000
STREAM_LIMIT = 30 * MB


def _peak(fn: Any) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_materialised_tasks_exceed_the_stream_limit() -> None:
    # What the streaming bound is measured against: holding all tasks at once costs more.
    assert _peak(lambda: [_small(i) for i in range(STREAM_TASKS)]) > STREAM_LIMIT


@pytest.mark.parametrize(("fmt", "name"), OUTPUTS)
def test_streams_without_holding_all_tasks(tmp_path: Path, fmt: str, name: str) -> None:
    out = tmp_path / name
    count: list[int] = []
    tasks = (_small(i) for i in range(STREAM_TASKS))
    peak = _peak(lambda: count.append(write_tasks(tasks, out, fmt)))
    assert count == [STREAM_TASKS]
    assert peak < STREAM_LIMIT, f"{fmt}: peak {peak / MB:.1f} MB"
    if name.endswith(".parquet"):
        assert pq.ParquetFile(out).metadata.num_rows == STREAM_TASKS
    elif name.endswith(".jsonl"):
        with open(out, "rb") as f:
            assert sum(1 for _ in f) == STREAM_TASKS
