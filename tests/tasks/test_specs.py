"""The spec resolver: every family's test command, checked against the official harness
(swebench 4.1.0's `make_eval_script_list`, run offline in its own venv built by the test bed) on
the real rows of ../shared/realdata, and the whole SWE-bench table against its source."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from swebox.grading.parsers import PARSERS
from swebox.tasks.io import Reject
from swebox.tasks.model import Task
from swebox.tasks.readers import read_tasks
from swebox.tasks.resolver import load_rules
from swebox.tasks.specs import TestRule, directives_from_patch, parser_name, resolve_spec
from swebox.tasks.specs.tables import table

VENVS = Path(os.environ.get("SWEBOX_VENVS", "/opt/swebox/venvs"))
ORACLE = VENVS / "swebench-4.1.0" / "bin" / "python"

_ORACLE_SCRIPTS = r"""
import json, sys
from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS
from swebench.harness.test_spec.create_scripts import make_eval_script_list
out = {}
for line in sys.stdin:
    row = json.loads(line)
    specs = MAP_REPO_VERSION_TO_SPECS[row["repo"]][row["version"]]
    out[row["instance_id"]] = make_eval_script_list(
        row, specs, "testbed", "/testbed", row["base_commit"], row["test_patch"])
json.dump(out, sys.stdout)
"""

_ORACLE_TABLE = r"""
import json, sys
from swebench.harness.constants import MAP_REPO_VERSION_TO_SPECS, MAP_REPO_TO_EXT
from swebench.harness.log_parsers import MAP_REPO_TO_PARSER
out = {}
for repo, versions in MAP_REPO_VERSION_TO_SPECS.items():
    if MAP_REPO_TO_EXT.get(repo) != "py" or repo not in MAP_REPO_TO_PARSER:
        continue
    out[repo] = {"parser": MAP_REPO_TO_PARSER[repo].__name__, "versions": {
        v: {"test_cmd": s.get("test_cmd"), "env": s.get("eval_commands") or [],
            "install": s.get("install")} for v, s in versions.items()}}
json.dump(out, sys.stdout)
"""


def _oracle(code: str, stdin: str = "") -> Any:
    if not ORACLE.exists():
        pytest.fail(f"{ORACLE} missing: run scripts/testbed.sh (it builds the oracle venvs)")
    out = subprocess.run([str(ORACLE), "-c", code], input=stdin, capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def _tasks(path: Path) -> list[Task]:
    items = list(read_tasks(path))
    assert not [i for i in items if isinstance(i, Reject)]
    return [i for i in items if isinstance(i, Task)]


SWEBENCH_FILES = ("swebench_lite_dev.jsonl", "swebench_lite_test_sweagent_reencoded.jsonl")


@pytest.mark.parametrize("name", SWEBENCH_FILES)
def test_swebench_rows_match_the_official_eval_script(realdata: Path, name: str) -> None:
    src = realdata / "datasets" / name
    scripts = _oracle(_ORACLE_SCRIPTS, src.read_text())
    for task in _tasks(src):
        spec = resolve_spec(task)
        assert spec is not None and spec.source == "swebench-table" and not spec.default
        lines = scripts[task.instance_id]
        start = lines.index(": '>>>>> Start Test Output'")
        assert lines[start + 1] == spec.command  # string for string
        assert lines[start + 2] == ": '>>>>> End Test Output'"
        # the harness's eval-time env commands follow its first `cd`, the re-install its
        # second activation; swebox runs them in that order, after activating `testbed`
        first_cd = lines.index("cd /testbed")
        second_activate = len(lines) - 1 - lines[::-1].index("conda activate testbed")
        env = lines[first_cd + 1: lines.index("git config --global --add safe.directory "
                                              "/testbed")]
        install = lines[second_activate + 1: start - 2]
        assert spec.setup == env + install
        assert lines[:2] == ["source /opt/miniconda3/bin/activate", "conda activate testbed"]
        assert spec.conda_env == "testbed"
        assert spec.parser in PARSERS


def test_django_env_and_dotted_directives(realdata: Path) -> None:
    src = realdata / "datasets" / "swebench_lite_test_sweagent_reencoded.jsonl"
    django = next(t for t in _tasks(src) if t.repo == "django/django")
    spec = resolve_spec(django)
    assert spec is not None and spec.parser == "django"
    assert spec.command.endswith(" sitemaps_tests.test_http sitemaps_tests.urls.http")
    old = django.model_copy(update={"version": "3.0"})
    spec3 = resolve_spec(old)
    assert spec3 is not None and "export LANG=en_US.UTF-8" in spec3.setup


def test_the_whole_swebench_table_equals_the_harness() -> None:
    oracle = _oracle(_ORACLE_TABLE)
    ours = table("swebench")
    assert set(ours) == set(oracle)
    for repo, want in oracle.items():
        mine = ours[repo]
        expected_parser = parser_name(want["parser"])
        assert mine.parser == expected_parser, repo
        for version, spec in want["versions"].items():
            group = mine.for_version(version)
            if spec["test_cmd"] is None:
                assert group is None
                continue
            assert group is not None, (repo, version)
            assert (group.test_cmd, group.env, group.install) == \
                (spec["test_cmd"], spec["env"], spec["install"]), (repo, version)


def test_directives_drop_non_test_files() -> None:
    patch = "".join(f"diff --git a/{p} b/{p}\n" for p in
                    ("tests/test_a.py", "tests/data.json", "docs/x.md", "tests/fixtures/in.csv",
                     "tests/b.yaml", "src/tests/test_c.py"))
    assert directives_from_patch(patch) == ["tests/test_a.py", "src/tests/test_c.py"]
    assert directives_from_patch(patch, "django") == ["test_a", "src.tests.test_c"]


def test_swegym_table_and_mypy_case_selection() -> None:
    patch = ("diff --git a/test-data/unit/check-classes.test b/test-data/unit/check-classes.test\n"
             "+[case testFoo]\n+x = 1\n+[case testBar_python2]\n")
    mypy = Task(instance_id="python__mypy-1", repo="python/mypy", version="1.9",
                test_patch=patch, source_format="swegym")
    spec = resolve_spec(mypy)
    assert spec is not None and spec.source == "swegym-table"
    assert spec.command == 'pytest -rA -k "testFoo or testBar_python2"'
    older = resolve_spec(mypy.model_copy(update={"version": "0.990"}))
    assert older is not None and older.command.startswith("pytest -n0 -rA -k ")
    moto = Task(instance_id="getmoto__moto-7365", repo="getmoto/moto", version="5.0",
                test_patch="diff --git a/tests/test_s3.py b/tests/test_s3.py\n",
                source_format="swegym")
    spec = resolve_spec(moto)
    assert spec is not None and spec.command == "pytest -n0 -rA tests/test_s3.py"
    assert spec.conda_env == "testbed"
    conan = resolve_spec(moto.model_copy(update={"repo": "conan-io/conan"}))
    assert conan is not None and conan.setup == ["export PYTHONPATH=${PYTHONPATH:-}:$(pwd)"]


def test_swebench_5_row_runs_its_own_script() -> None:
    task = Task(instance_id="o__r-1", repo="o/r", source_format="swebench", extra={
        "eval_script": "#!/bin/bash\nset -uxo pipefail\npytest -rA t.py\n",
        "log_parser": "parse_log_pytest_v2", "eval_type": "fail_only", "image": "x/y:z"})
    spec = resolve_spec(task)
    assert spec is not None and spec.source == "row" and spec.runs_script
    assert spec.eval_type == "fail_only" and spec.parser == "pytest" and spec.skipped_maintains


def test_swebench_5_rows_name_their_image() -> None:
    from swebox.tasks.io import Row
    from swebox.tasks.readers import ReadOptions, convert_rows

    row = {"instance_id": "o__r-3", "repo": "o/r", "base_commit": "c", "patch": "",
           "test_patch": "", "FAIL_TO_PASS": "[]", "PASS_TO_PASS": "[]",
           "environment_setup_commit": "c", "image": "registry.x/sweb.eval.o_r-3:v2",
           "eval_script": "pytest", "log_parser": "parse_log_pytest", "eval_type": "pass_and_fail"}
    (task,) = convert_rows([Row(row, "t:1")], "swebench", ReadOptions())
    assert isinstance(task, Task) and task.run_image == "registry.x/sweb.eval.o_r-3:v2"
    plain = {k: v for k, v in row.items() if k != "image"}
    (old,) = convert_rows([Row(plain, "t:2")], "swebench", ReadOptions())
    assert isinstance(old, Task) and old.image == "swebench/sweb.eval.x86_64.o_1776_r-3:latest"


def test_rebench_install_config() -> None:
    patch = "diff --git a/tests/test_q.py b/tests/test_q.py\n"
    task = Task(instance_id="o__r-2", repo="o/r", test_patch=patch, source_format="swebench",
                extra={"install_config": {"test_cmd": "pytest --no-header -rA --tb=no",
                                          "log_parser": "parse_log_pytest"}})
    spec = resolve_spec(task)
    assert spec is not None and spec.source == "rebench"
    assert spec.command == "LANG=C.UTF-8 LC_ALL=C.UTF-8 pytest --no-header -rA --tb=no " \
        "tests/test_q.py"
    assert spec.conda_env == "testbed"


def test_swesmith_profile_default(realdata: Path) -> None:
    src = realdata / "datasets" / "swesmith_pandas-dev__pandas.95280573.pr_53652.json"
    task = _tasks(src)[0]
    spec = resolve_spec(task)
    assert spec is not None and spec.source == "swesmith" and spec.missing_passes
    files = dict.fromkeys(t.split("::")[0] for t in task.fail_to_pass)
    assert spec.command == "pytest --disable-warnings --color=no --tb=no --verbose " + \
        " ".join(files)
    # the task is its branch; the failing tests come back from the commit before their removal
    assert spec.checkout == task.instance_id and spec.tests_from == f"{task.instance_id}~1"
    assert set(spec.test_files) >= set(files)


def test_multiswebench_runs_the_images_fix_run(realdata: Path) -> None:
    for task in _tasks(realdata / "datasets" / "multiswebench_java_2rows.jsonl"):
        spec = resolve_spec(task)
        assert spec is not None and spec.source == "multiswebench"
        assert spec.script_path == "/home/fix-run.sh" and spec.patch_file == "/home/fix.patch"
        assert spec.empty_script_path == "/home/test-run.sh"
        assert task.workdir == f"/home/{task.repo_name}"
        assert spec.parser == "maven" and spec.cwd == f"/home/{task.repo_name}"


def test_r2e_hides_its_tests(realdata: Path) -> None:
    task = _tasks(realdata / "datasets" / "r2egym_lite_aiohttp_f0d74880_PARTIAL.json")[0]
    spec = resolve_spec(task)
    assert spec is not None and spec.command == "bash run_tests.sh"
    assert {"/r2e_tests", "/testbed/run_tests.sh"} <= set(spec.hidden)


def test_unknown_repo_gets_a_documented_default() -> None:
    patch = ("diff --git a/tests/test_new.py b/tests/test_new.py\n"
             "diff --git a/tests/data.json b/tests/data.json\n")
    task = Task(instance_id="acme__widget-1", repo="acme/widget", test_patch=patch,
                version="9.9", source_format="swebench")
    spec = resolve_spec(task)
    assert spec is not None and spec.default and spec.source == "default"
    assert spec.command == "pytest -rA tests/test_new.py"
    assert resolve_spec(task.model_copy(update={"language": "cobol"})) is None


def test_overrides_win(tmp_path: Path) -> None:
    task = Task(instance_id="django__django-1", repo="django/django", version="4.2",
                source_format="swebench")
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text('[[tests]]\nrepo = "django/*"\ncommand = "make check"\n'
                          'parser = "unittest"\n')
    rules = load_rules(rules_file).tests
    spec = resolve_spec(task, rules)
    assert spec is not None and spec.source == "rules" and spec.command == "make check"
    assert spec.parser == "unittest" and spec.conda_env == "testbed"  # the rest is inherited
    other = task.model_copy(update={"repo": "psf/requests", "version": "2.0"})
    spec2 = resolve_spec(other, rules)
    assert spec2 is not None and spec2.source == "swebench-table"
    forced = resolve_spec(task, rules, command="pytest -x")
    assert forced is not None and forced.source == "override" and forced.command == "pytest -x"
    assert not TestRule(command="x").matches("a/b", "a__b-1")  # a rule must match something
