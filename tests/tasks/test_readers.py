"""Readers on real dataset rows (../shared/realdata) and on hostile hand-made files."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from swebox.errors import BadInput
from swebox.tasks.io import Reject
from swebox.tasks.model import Task
from swebox.tasks.patches import reverse_patch
from swebox.tasks.readers import ReadOptions, detect_format, read_tasks
from swebox.tasks.resolver import ImageRules, RewriteRule


def _tasks(path: Path, fmt: str | None = None, **opts: object) -> list[Task]:
    items = list(read_tasks(path, fmt, ReadOptions(**opts) if opts else None))
    rejects = [i for i in items if isinstance(i, Reject)]
    assert not rejects, rejects
    return [i for i in items if isinstance(i, Task)]


def test_swebench_lite_rows(realdata: Path) -> None:
    src = realdata / "datasets" / "swebench_lite_dev.jsonl"
    raw = [json.loads(line) for line in src.read_text().splitlines()]
    tasks = _tasks(src)
    assert [t.instance_id for t in tasks] == [r["instance_id"] for r in raw]
    t, r = tasks[0], raw[0]
    assert t.source_format == "swebench"
    assert t.fail_to_pass == json.loads(r["FAIL_TO_PASS"])  # JSON-encoded strings decoded
    assert t.pass_to_pass == json.loads(r["PASS_TO_PASS"])
    # SWE-bench cuts ids at their first space (`...fix_stdin[select`): kept exactly as stored
    assert any(test.count("[") != test.count("]") for test in t.fail_to_pass + t.pass_to_pass)
    assert t.gold_patch == r["patch"] and t.test_patch == r["test_patch"]
    assert t.extra == {"hints_text": r["hints_text"],
                       "environment_setup_commit": r["environment_setup_commit"]}
    assert t.image == "swebench/sweb.eval.x86_64.sqlfluff_1776_sqlfluff-1625:latest"
    assert tasks[1].pass_to_pass == []


def test_swebench_django_and_sympy(realdata: Path) -> None:
    tasks = _tasks(realdata / "datasets" / "swebench_lite_test_sweagent_reencoded.jsonl")
    ids = {t.instance_id: t for t in tasks}
    assert ids["django__django-16255"].image == \
        "swebench/sweb.eval.x86_64.django_1776_django-16255:latest"
    assert ids["sympy__sympy-13031"].version == "1.1"


def test_swegym_is_detected_from_real_lists() -> None:
    row = {"instance_id": "getmoto__moto-7365", "repo": "getmoto/moto", "base_commit": "a" * 40,
           "patch": "", "test_patch": "", "FAIL_TO_PASS": ["t1"], "PASS_TO_PASS": []}
    assert detect_format(row) == "swegym"


def test_swegym_image(tmp_path: Path) -> None:
    f = tmp_path / "gym.jsonl"
    f.write_text(json.dumps({"instance_id": "getmoto__moto-7365", "repo": "getmoto/moto",
                             "base_commit": "b" * 40, "patch": "", "test_patch": "",
                             "FAIL_TO_PASS": ["t1"], "PASS_TO_PASS": ["t2"],
                             "version": 5.0}) + "\n")
    (t,) = _tasks(f)
    assert t.source_format == "swegym" and t.version == "5.0"
    assert t.image == "xingyaoww/sweb.eval.x86_64.getmoto_s_moto-7365:latest"


def test_swesmith_row_and_reversed_gold_patch(realdata: Path, tmp_path: Path) -> None:
    src = realdata / "datasets" / "swesmith_pandas-dev__pandas.95280573.pr_53652.json"
    raw = json.loads(src.read_text())
    (t,) = _tasks(src)
    assert t.source_format == "swesmith" and t.repo == "pandas-dev/pandas"
    assert t.image == "jyangballin/swesmith.x86_64.pandas-dev_1776_pandas.95280573:latest"
    assert t.extra["bug_patch"] == raw["patch"]
    assert t.extra["swesmith_repo"] == raw["repo"]
    assert t.gold_patch == reverse_patch(raw["patch"])
    assert reverse_patch(t.gold_patch) == raw["patch"]


def test_reverse_patch_undoes_the_bug_in_a_real_repository(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    (repo / "a.py").write_text("".join(f"line {i}\n" for i in range(30)))
    (repo / "gone.txt").write_text("to be deleted\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=repo, check=True)
    text = (repo / "a.py").read_text().replace("line 3\n", "bug 3\nextra\n")
    (repo / "a.py").write_text(text.replace("line 25\n", ""))
    (repo / "new.py").write_text("new file\n")
    (repo / "gone.txt").unlink()
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    bug = subprocess.run(["git", "diff", "--cached"], cwd=repo, check=True,
                         capture_output=True, text=True).stdout
    subprocess.run([*git, "commit", "-qm", "bug"], cwd=repo, check=True)
    gold = tmp_path / "gold.patch"
    gold.write_text(reverse_patch(bug))
    subprocess.run(["git", "apply", str(gold)], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    back = subprocess.run(["git", "diff", "--cached", "HEAD~1", "--stat"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout
    assert back == ""


def test_multiswebench_rows(realdata: Path) -> None:
    src = realdata / "datasets" / "multiswebench_java_2rows.jsonl"
    raw = [json.loads(line) for line in src.read_text().splitlines()]
    tasks = _tasks(src)
    gson = tasks[0]
    assert gson.instance_id == "google__gson-1093" and gson.repo == "google/gson"
    assert gson.base_commit == raw[0]["base"]["sha"]
    assert gson.fail_to_pass == sorted(raw[0]["f2p_tests"])
    assert len(gson.pass_to_pass) == 87 and gson.language == "java"
    assert gson.image == "mswebench/google_m_gson:pr-1093"
    assert gson.extra["s2p_tests"] == raw[0]["s2p_tests"]
    assert raw[0]["resolved_issues"][0]["title"] in gson.problem_statement


def test_multiswebench_skipped_and_new_tests_must_pass(realdata: Path, tmp_path: Path) -> None:
    row = json.loads((realdata / "datasets" / "multiswebench_java_2rows.jsonl"
                      ).read_text().splitlines()[0])
    t = {"run": "NONE", "test": "NONE", "fix": "PASS"}
    row["s2p_tests"] = {"a.SkippedTest": {**t, "test": "SKIP"}}
    row["n2p_tests"] = {"b.NewTest": t}
    f = tmp_path / "m.jsonl"
    f.write_text(json.dumps(row) + "\n")
    (task,) = _tasks(f)
    assert task.fail_to_pass == sorted([*row["f2p_tests"], "a.SkippedTest", "b.NewTest"])


def test_r2e_row(realdata: Path) -> None:
    src = realdata / "datasets" / "r2egym_lite_aiohttp_f0d74880_PARTIAL.json"
    raw = json.loads(src.read_text())
    (t,) = _tasks(src)
    assert t.instance_id == "aiohttp__f0d74880deec"  # {repo_name}__{commit_hash[:12]}
    assert t.image == raw["docker_image"] and len(t.expected_output or {}) == 64
    (t2,) = _tasks(src, r2e_id_template="{repo_name}-{commit_hash:.7}")
    assert t2.instance_id == "aiohttp-f0d7488"


def test_r2e_expected_output_as_json_string(tmp_path: Path) -> None:
    f = tmp_path / "r2e.jsonl"
    f.write_text(json.dumps({"repo_name": "pandas", "commit_hash": "c" * 40,
                             "docker_image": "namanjain12/pandas_final:" + "c" * 40,
                             "expected_output_json": json.dumps({"T.test_a": "PASSED"}),
                             "modified_files": ["a.py"]}) + "\n")
    (t,) = _tasks(f)
    assert t.expected_output == {"T.test_a": "PASSED"}
    assert t.extra == {"modified_files": ["a.py"]}


CSV = ("\ufeffinstance_id,repo,base_commit,version,image_storage_uri,problem_statement,"
       "owner_note\r\n"
       "1001,randovania/randovania,bd8e6fa803af7fb4c5a3bb7bb4ad4d2f5463682d,1.0,"
       "vmvm-registry.fbinfra.net/repomate_image_activ_pytest/randovania_randovania:"
       "bd8e6fa803af7fb4c5a3bb7bb4ad4d2f5463682d,\"Crash when loading, \"\"quoted\"\"\r\n"
       "second line\",keep me\r\n"
       "1002,bad-repo-without-owner,abc,,img:1,statement,\r\n"
       "1003,acme/tool,def,1003,acme_tool:def,ok,x,EXTRA CELL\r\n"
       "1004,acme/tool,0123,,acme_tool:0123,fine,\r\n")


def test_client_csv_sheet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    f = tmp_path / "ClientSheet.csv"
    f.write_bytes(CSV.encode())
    rules = ImageRules(rewrite=[RewriteRule(
        match="vmvm-registry.fbinfra.net/*", local="{repository}:{tag}",
        store="s3://kuberha-velora/velora-files/images/{repository}-{tag}.tar")])
    with caplog.at_level(logging.WARNING, logger="swebox.tasks"):
        items = list(read_tasks(f, opts=ReadOptions(rules=rules)))
    tasks = [i for i in items if isinstance(i, Task)]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [t.instance_id for t in tasks] == ["1001", "1004"]
    first = tasks[0]
    assert first.source_format == "csv" and first.version == "1001"
    assert first.problem_statement == 'Crash when loading, "quoted"\nsecond line'
    assert first.extra == {"owner_note": "keep me", "sheet_version": "1.0"}
    assert first.local_image == "randovania_randovania:bd8e6fa803af7fb4c5a3bb7bb4ad4d2f5463682d"
    assert rules.store_path(first.image or "") == (
        "s3://kuberha-velora/velora-files/images/randovania_randovania-"
        "bd8e6fa803af7fb4c5a3bb7bb4ad4d2f5463682d.tar")
    assert "sheet says version '1.0'" in caplog.text
    reasons = {r.where.rsplit(":", 1)[1]: r.reason for r in rejects}
    assert "owner/repo" in reasons["4"] and "cells" in reasons["5"]


@pytest.mark.parametrize("field", ["instance_id", "repo", "base_commit", "image_storage_uri"])
def test_client_csv_rejects_rows_missing_a_needed_field(tmp_path: Path, field: str) -> None:
    cols = ["instance_id", "repo", "base_commit", "version", "image_storage_uri",
            "problem_statement"]
    good = {"instance_id": "7", "repo": "acme/tool", "base_commit": "abc",
            "version": "", "image_storage_uri": "img:1", "problem_statement": "p"}
    bad = {**good, "instance_id": "8", field: "  "}
    f = tmp_path / "sheet.csv"
    f.write_text(",".join(cols) + "\n" + "\n".join(
        ",".join(r[c] for c in cols) for r in (good, bad)) + "\n")
    items = list(read_tasks(f))
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [i.instance_id for i in items if isinstance(i, Task)] == ["7"]
    assert len(rejects) == 1 and rejects[0].where.endswith(":3")
    assert f"{field} is empty" in rejects[0].reason


def test_graphplanner_rows(tmp_path: Path) -> None:
    f = tmp_path / "gp.jsonl"
    f.write_text(json.dumps({"task_id": "t1", "max_steps": 6, "issue": "It breaks",
                             "sandbox": {"backend": "repoenv", "docker_image": "img:1",
                                         "workdir": "/repo", "mounts": {}, "env": {"A": "1"},
                                         "r2e_ds_json": "config/x.json"}}) + "\n")
    (t,) = _tasks(f)
    assert (t.instance_id, t.image, t.workdir) == ("t1", "img:1", "/repo")
    assert t.extra["sandbox"]["env"] == {"A": "1"} and t.extra["max_steps"] == 6


def test_parquet_input(tmp_path: Path, realdata: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in
            (realdata / "datasets" / "swebench_lite_dev.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    tasks = _tasks(tmp_path / "d.parquet")
    assert [t.instance_id for t in tasks] == [r["instance_id"] for r in rows]


def test_bad_rows_are_rejected_with_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "mixed.jsonl"
    good = {"instance_id": "a__b-1", "repo": "a/b", "base_commit": "c", "patch": "",
            "FAIL_TO_PASS": "[]", "PASS_TO_PASS": "[]", "environment_setup_commit": "c"}
    f.write_text("\n".join([json.dumps(good), "{not json", "[1, 2]",
                            json.dumps({**good, "instance_id": "a__b-2", "FAIL_TO_PASS": "{"}),
                            json.dumps({**good, "instance_id": "  "}),
                            json.dumps(good), json.dumps({**good, "instance_id": "a__b-3"})]))
    items = list(read_tasks(f))
    assert [i.instance_id for i in items if isinstance(i, Task)] == ["a__b-1", "a__b-3"]
    where = [(i.where.rsplit(":", 1)[1], i.reason) for i in items if isinstance(i, Reject)]
    assert [w for w, _ in where] == ["2", "3", "4", "5", "6"]
    assert "duplicate" in where[-1][1] and "JSON" in where[0][1]


def test_undetectable_format_says_what_to_do(tmp_path: Path) -> None:
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(BadInput, match="--from"):
        list(read_tasks(f))
    with pytest.raises(BadInput, match="no such file"):
        list(read_tasks(tmp_path / "missing.jsonl"))
