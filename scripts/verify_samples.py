#!/usr/bin/env python3
"""Verify the bundled sample tasks under ``swebox/samples/tasks``.

Every sample task is a directory containing ``task.json``, ``repo/`` (the
repository at the base commit, without the hidden tests), ``gold.patch`` and
``test.patch``.  For each task this script checks, in throw-away copies of
``repo/``:

* ``task.json`` has exactly the expected keys and sane values, and
  ``base_commit`` matches the commit produced by the reproducible recipe
  (fixed author/committer/date, message "Base commit");
* ``repo/`` is clean: no executable files, no ``__pycache__``/``.pytest_cache``,
  no ``*.pyc``, no symlinks, no empty directories;
* ``gold.patch`` touches only non-test files and ``test.patch`` only test files;
  both apply (``git apply --check``) on the base commit, separately and together;
* base: none of the FAIL_TO_PASS tests exist, every visible test has its
  expected status;
* base + gold.patch: the visible tests still have their expected status;
* base + test.patch: every FAIL_TO_PASS test FAILS/ERRORS, every PASS_TO_PASS
  test PASSES;
* base + test.patch + gold.patch: the collected tests are exactly the keys of
  ``expected_output`` and each has exactly that status.

Statuses are parsed from the ``-rA`` short test summary.  ``SKIPPED`` lines
carry ``path:line`` instead of a node id; they are mapped back to the test
function that contains that line.

Usage::

    python3 scripts/verify_samples.py [--python PYTHON] [TASK ...]

Prints one line per task and exits non-zero if any task has a problem.
Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parents[1] / "swebox" / "samples" / "tasks"

EXPECTED_KEYS = {
    "instance_id",
    "repo",
    "image_style",
    "base_commit",
    "created_at",
    "version",
    "problem_statement",
    "hints_text",
    "test_command",
    "FAIL_TO_PASS",
    "PASS_TO_PASS",
    "expected_output",
}
IMAGE_STYLES = {"swebench", "r2e"}
STATUSES = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS")
FAILING = {"FAILED", "ERROR"}
BASE_COMMIT_ENV = {
    "GIT_AUTHOR_NAME": "swebox",
    "GIT_AUTHOR_EMAIL": "samples@swebox.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_NAME": "swebox",
    "GIT_COMMITTER_EMAIL": "samples@swebox.invalid",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
}
MIN_F2P = 2
MIN_P2P = 4
SLOW_RUN_SECONDS = 2.0


class TaskError(Exception):
    """A verification failure for one task."""


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _git_env() -> dict:
    env = dict(os.environ)
    # Make git behave the same regardless of the caller's configuration.
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def git(cwd: Path, *args: str, env_extra: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = _git_env()
    if env_extra:
        env.update(env_extra)
    proc = subprocess.run(
        ["git", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        raise TaskError(f"git {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def make_base_checkout(repo: Path, dest: Path) -> str:
    """Copy ``repo`` into ``dest``, commit it with the fixed recipe, return the sha."""
    shutil.copytree(repo, dest, symlinks=True)
    git(dest, "init", "-q", ".")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "Base commit", env_extra=BASE_COMMIT_ENV)
    return git(dest, "rev-parse", "HEAD").stdout.strip()


def patch_paths(patch_text: str) -> list[str]:
    paths = []
    for line in patch_text.splitlines():
        match = re.match(r"^diff --git a/(\S+) b/(\S+)$", line)
        if match:
            paths.extend({match.group(1), match.group(2)})
    return paths


def is_test_path(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    return (
        parts[0] in ("tests", "test", "testing")
        or name == "conftest.py"
        or name.startswith("test_")
        or name.endswith("_test.py")
    )


def _function_spans(path: Path, rel: str) -> list[tuple[int, int, str]]:
    """(first_line, last_line, node_id) for every test function in ``path``."""
    spans = []
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return spans

    def visit(body, prefix):
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, prefix + [node.name])
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                node_id = "::".join([rel] + prefix + [node.name])
                spans.append((first, node.end_lineno or node.lineno, node_id))

    visit(tree.body, [])
    return spans


def parse_summary(output: str, checkout: Path) -> dict[str, str]:
    """Map node id -> status from the ``-rA`` short test summary section."""
    statuses: dict[str, str] = {}
    in_summary = False
    for line in output.splitlines():
        if re.match(r"^=+ short test summary info =+$", line):
            in_summary = True
            continue
        if not in_summary:
            continue
        if re.match(r"^=+ .* =+$", line):
            break
        status = line.split(" ", 1)[0]
        if status not in STATUSES:
            continue
        rest = line[len(status) + 1 :]
        if status == "SKIPPED":
            match = re.match(r"^\[(\d+)\] (.+?):(\d+): ", rest + " ")
            if not match:
                raise TaskError(f"cannot parse skip line: {line!r}")
            rel, lineno = match.group(2), int(match.group(3))
            candidates = [
                node_id
                for first, last, node_id in _function_spans(checkout / rel, rel)
                if first <= lineno <= last
            ]
            if len(candidates) != 1 or match.group(1) != "1":
                raise TaskError(f"cannot map skip line to a single test: {line!r}")
            statuses[candidates[0]] = status
            continue
        node_id = rest.split(" - ", 1)[0].strip()
        if node_id in statuses and statuses[node_id] != status:
            # e.g. a test that FAILED and then ERRORED in teardown
            statuses[node_id] = "ERROR" if "ERROR" in (status, statuses[node_id]) else status
        else:
            statuses[node_id] = status
    if not in_summary:
        raise TaskError("no short test summary in pytest output:\n" + output[-2000:])
    return statuses


def run_tests(python: str, checkout: Path, test_command: str) -> tuple[dict[str, str], float, str]:
    argv = shlex.split(test_command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = python
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["NO_COLOR"] = "1"
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    if proc.returncode not in (0, 1):
        raise TaskError(f"test command exited with {proc.returncode}:\n{output[-3000:]}")
    # Prefer pytest's own session duration ("== 12 passed in 0.05s ==") over the
    # wall-clock time, which also counts interpreter and plugin start-up.
    durations = re.findall(r" in (\d+(?:\.\d+)?)s(?: \([^)]*\))? =+\s*$", output, re.M)
    if durations:
        elapsed = float(durations[-1])
    return parse_summary(output, checkout), elapsed, output


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------


def check_metadata(task_dir: Path, meta: dict) -> list[str]:
    problems = []
    keys = set(meta)
    if keys != EXPECTED_KEYS:
        problems.append(f"task.json keys: missing {sorted(EXPECTED_KEYS - keys)}, extra {sorted(keys - EXPECTED_KEYS)}")
        return problems
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", meta["repo"]):
        problems.append(f"bad repo {meta['repo']!r}")
    else:
        owner, name = meta["repo"].split("/")
        if not re.fullmatch(re.escape(f"{owner}__{name}") + r"-\d+", meta["instance_id"]):
            problems.append(f"instance_id {meta['instance_id']!r} does not match repo {meta['repo']!r}")
    if meta["image_style"] not in IMAGE_STYLES:
        problems.append(f"bad image_style {meta['image_style']!r}")
    if not re.fullmatch(r"[0-9a-f]{40}", meta["base_commit"]):
        problems.append("base_commit is not 40 lowercase hex digits")
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["created_at"]):
        problems.append(f"bad created_at {meta['created_at']!r}")
    for key in ("version", "problem_statement", "hints_text", "test_command"):
        if not isinstance(meta[key], str):
            problems.append(f"{key} must be a string")
    if not meta["problem_statement"].strip():
        problems.append("empty problem_statement")
    f2p, p2p, expected = meta["FAIL_TO_PASS"], meta["PASS_TO_PASS"], meta["expected_output"]
    if not (isinstance(f2p, list) and isinstance(p2p, list) and isinstance(expected, dict)):
        problems.append("FAIL_TO_PASS/PASS_TO_PASS must be lists and expected_output a dict")
        return problems
    if len(f2p) < MIN_F2P:
        problems.append(f"only {len(f2p)} FAIL_TO_PASS tests")
    if len(p2p) < MIN_P2P:
        problems.append(f"only {len(p2p)} PASS_TO_PASS tests")
    for name, ids in (("FAIL_TO_PASS", f2p), ("PASS_TO_PASS", p2p)):
        if len(set(ids)) != len(ids):
            problems.append(f"duplicate ids in {name}")
    if set(f2p) & set(p2p):
        problems.append(f"ids in both FAIL_TO_PASS and PASS_TO_PASS: {sorted(set(f2p) & set(p2p))}")
    for node_id in list(f2p) + list(p2p) + list(expected):
        if re.search(r"\s", node_id) or "::" not in node_id:
            problems.append(f"suspicious test id {node_id!r}")
    for node_id in list(f2p) + list(p2p):
        if expected.get(node_id) != "PASSED":
            problems.append(f"{node_id} should be PASSED in expected_output, is {expected.get(node_id)!r}")
    for node_id, status in expected.items():
        if status not in STATUSES or status in FAILING:
            problems.append(f"expected_output[{node_id!r}] = {status!r}")
    verbose = any(arg in ("-v", "-vv", "--verbose") for arg in shlex.split(meta["test_command"]))
    if "SKIPPED" in expected.values() and not verbose:
        # `-rA` prints "SKIPPED [1] file:line: reason" without the node id, so a log
        # parser (swebox.grading.parsers.parse_pytest) cannot report skipped tests unless
        # the command also prints verbose per-test lines.
        problems.append("expected_output lists SKIPPED tests but test_command has no -v")
    return problems


def check_repo_tree(repo: Path) -> list[str]:
    problems = []
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo)
        if path.is_symlink():
            problems.append(f"symlink in repo/: {rel}")
        elif path.is_dir():
            if path.name in ("__pycache__", ".pytest_cache", ".git") or path.name.endswith(".egg-info"):
                problems.append(f"unwanted directory in repo/: {rel}")
            elif not any(path.iterdir()):
                problems.append(f"empty directory in repo/: {rel}")
        else:
            if path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
                problems.append(f"executable file in repo/: {rel}")
            if path.suffix in (".pyc", ".pyo"):
                problems.append(f"bytecode in repo/: {rel}")
    return problems


def expect(problems: list[str], label: str, statuses: dict[str, str], node_id: str, wanted: set[str]) -> None:
    got = statuses.get(node_id, "MISSING")
    if got not in wanted:
        problems.append(f"[{label}] {node_id}: expected {'/'.join(sorted(wanted))}, got {got}")


def verify_task(task_dir: Path, python: str) -> tuple[list[str], str]:
    meta = json.loads((task_dir / "task.json").read_text(encoding="utf-8"))
    problems = check_metadata(task_dir, meta)
    if problems and set(meta) != EXPECTED_KEYS:
        return problems, ""
    repo = task_dir / "repo"
    problems += check_repo_tree(repo)

    gold = (task_dir / "gold.patch").read_text(encoding="utf-8")
    tests = (task_dir / "test.patch").read_text(encoding="utf-8")
    gold_paths, test_paths = patch_paths(gold), patch_paths(tests)
    if not gold_paths:
        problems.append("gold.patch touches no files")
    if not test_paths:
        problems.append("test.patch touches no files")
    problems += [f"gold.patch touches test file {p}" for p in gold_paths if is_test_path(p)]
    problems += [f"test.patch touches non-test file {p}" for p in test_paths if not is_test_path(p)]

    f2p, p2p, expected = meta["FAIL_TO_PASS"], meta["PASS_TO_PASS"], meta["expected_output"]
    command = meta["test_command"]
    gold_file = (task_dir / "gold.patch").resolve()
    test_file = (task_dir / "test.patch").resolve()
    timings = []

    with tempfile.TemporaryDirectory(prefix=f"swebox-verify-{task_dir.name}-") as tmp:
        tmp = Path(tmp)
        base = tmp / "base"
        sha = make_base_checkout(repo, base)
        if sha != meta["base_commit"]:
            problems.append(f"base_commit mismatch: task.json {meta['base_commit']}, recomputed {sha}")
        leftover = git(base, "status", "--porcelain", "--ignored").stdout
        if leftover.strip():
            problems.append(f"files in repo/ not part of the base commit (ignored?): {leftover.split()}")

        # 1. patches apply, separately and together, in either order
        for name, patch in (("test.patch", test_file), ("gold.patch", gold_file)):
            proc = git(base, "apply", "--check", str(patch), check=False)
            if proc.returncode != 0:
                problems.append(f"{name} does not apply: {proc.stderr.strip()}")
        if problems:
            return problems, ""

        def checkout(name: str, patches: list[Path]) -> Path:
            dest = tmp / name
            shutil.copytree(base, dest, symlinks=True)
            for patch in patches:
                proc = git(dest, "apply", "--whitespace=error-all", str(patch), check=False)
                if proc.returncode != 0:
                    raise TaskError(f"[{name}] applying {patch.name} failed: {proc.stderr.strip()}")
            return dest

        reverse = checkout("gold_then_test", [gold_file, test_file])
        both = checkout("test_then_gold", [test_file, gold_file])
        if git(reverse, "diff", "--no-color", "HEAD").stdout != git(both, "diff", "--no-color", "HEAD").stdout:
            problems.append("applying the patches in different orders gives different trees")

        # 4. base alone: hidden tests absent, visible tests as expected
        statuses, elapsed, _ = run_tests(python, base, command)
        timings.append(elapsed)
        if not statuses:
            problems.append("[base] no tests collected")
        for node_id in f2p:
            if node_id in statuses:
                problems.append(f"[base] FAIL_TO_PASS test {node_id} is not hidden (status {statuses[node_id]})")
        visible = dict(statuses)
        for node_id, status in visible.items():
            if status in FAILING or status == "XPASS":
                problems.append(f"[base] visible test {node_id} {status}")
            elif node_id in expected and expected[node_id] != status:
                problems.append(f"[base] visible test {node_id}: {status}, expected_output says {expected[node_id]}")
            elif node_id not in expected:
                problems.append(f"[base] visible test {node_id} missing from expected_output")

        # 5. gold alone keeps the visible tests green
        statuses, elapsed, _ = run_tests(python, checkout("gold_only", [gold_file]), command)
        timings.append(elapsed)
        if statuses != visible:
            diff = {k: (visible.get(k), statuses.get(k)) for k in set(visible) | set(statuses) if visible.get(k) != statuses.get(k)}
            problems.append(f"[gold only] visible test statuses changed: {diff}")

        # 2. base + test.patch
        before, elapsed, _ = run_tests(python, checkout("tests_only", [test_file]), command)
        timings.append(elapsed)
        for node_id in f2p:
            expect(problems, "before", before, node_id, FAILING)
        for node_id in p2p:
            expect(problems, "before", before, node_id, {"PASSED"})

        # 3. base + test.patch + gold.patch
        after, elapsed, _ = run_tests(python, both, command)
        timings.append(elapsed)
        if set(after) != set(expected):
            problems.append(
                f"[after] collected tests differ from expected_output: "
                f"unexpected {sorted(set(after) - set(expected))}, missing {sorted(set(expected) - set(after))}"
            )
        for node_id, status in expected.items():
            expect(problems, "after", after, node_id, {status})
        for node_id in list(f2p) + list(p2p):
            expect(problems, "after", after, node_id, {"PASSED"})

        # F2P/P2P should be a complete classification of the "after" passes
        unclassified = sorted(
            node_id
            for node_id, status in after.items()
            if status == "PASSED" and before.get(node_id) == "PASSED" and node_id not in p2p
        )
        if unclassified:
            problems.append(f"tests passing before and after but not in PASS_TO_PASS: {unclassified}")
        unlisted = sorted(
            node_id
            for node_id, status in after.items()
            if status == "PASSED" and before.get(node_id) in FAILING and node_id not in f2p
        )
        if unlisted:
            problems.append(f"tests fixed by gold.patch but not in FAIL_TO_PASS: {unlisted}")

    slowest = max(timings) if timings else 0.0
    summary = f"F2P={len(f2p)} P2P={len(p2p)} tests={len(expected)} slowest_session={slowest:.2f}s"
    if slowest > SLOW_RUN_SECONDS:
        summary += " (slow)"
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", help="task names (default: every directory with a task.json)")
    parser.add_argument("--python", default=sys.executable, help="interpreter used for 'python3' in test_command")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every problem, not just the first few")
    args = parser.parse_args(argv)

    if shutil.which("git") is None:
        print("git is required", file=sys.stderr)
        return 2
    task_dirs = sorted(p.parent for p in TASKS_DIR.glob("*/task.json"))
    if args.tasks:
        wanted = set(args.tasks)
        task_dirs = [p for p in task_dirs if p.name in wanted]
        missing = wanted - {p.name for p in task_dirs}
        if missing:
            print(f"unknown task(s): {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
    if not task_dirs:
        print("no tasks found", file=sys.stderr)
        return 2

    failures = 0
    for task_dir in task_dirs:
        try:
            problems, summary = verify_task(task_dir, args.python)
        except (TaskError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
            problems, summary = [f"{type(exc).__name__}: {exc}"], ""
        if problems:
            failures += 1
            shown = problems if args.verbose else problems[:5]
            print(f"FAIL {task_dir.name}: {len(problems)} problem(s)")
            for problem in shown:
                print(f"    - {problem}")
            if len(shown) < len(problems):
                print(f"    ... {len(problems) - len(shown)} more (use -v)")
        else:
            print(f"OK   {task_dir.name}: {summary}")
    print(f"{len(task_dirs) - failures}/{len(task_dirs)} tasks verified")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
