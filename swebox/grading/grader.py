"""The grader: one candidate patch, one fresh sandbox, one verdict.

1. A fresh sandbox starts from the task image: never the agent's sandbox.
2. The candidate patch is applied (the method that worked is recorded; a patch that applies
   with no method is `patch_failed`, a wrong patch, not an infrastructure failure).
3. Test infrastructure the patch touched (test files, conftest.py, pytest/tox configuration,
   sitecustomize/usercustomize, .pth files, R2E's tests) goes back to the base commit
   (swebox.grading.tamper); the verdict lists it and sets `tampering_suspected`.
4. Only then do the hidden tests arrive: files the test patch touches are reset to the base
   commit (so the candidate cannot pre-empt them) and the test patch is applied (a row's own
   script applies it itself; Multi-SWE-bench's fix-run.sh gets the cleaned patch as its
   /home/fix.patch on a base tree).
5. The task's `TestSpec` (swebox.tasks.specs: the family's command, set-up, parser) runs, framed
   by random per-run markers (swebox.grading.runscript). Statuses come from a JUnit XML file at
   a per-run path (pytest gets it through PYTEST_ADDOPTS) or from between the markers; text a
   patch prints is outside those places.
6. The dataset family's rule judges (swebox.grading.rules). Timeouts, the OOM killer, engine
   errors and runs that collected no tests are `infra_failure`, kept apart from a wrong patch.
"""

from __future__ import annotations

import re
import secrets
import time

from pydantic import BaseModel

from swebox.errors import BadInput, SweboxError
from swebox.grading.parsers import align_truncated_ids, parse_log
from swebox.grading.rules import judge, rule_for
from swebox.grading.runscript import between, grading_program
from swebox.grading.tamper import reset_to_base, revert_infrastructure
from swebox.sandbox import Sandbox, start_sandbox
from swebox.tasks.model import Task
from swebox.tasks.specs import TestRule, TestSpec, resolve_spec

_DIFF_PATHS = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)
# Plain unified diffs (no `diff --git` line) name their files only here; `patch -p1` and
# `git apply` strip the first component, as below.
_PLAIN_HEADERS = re.compile(r"^--- ([^\t\n]+)[^\n]*\n\+\+\+ ([^\t\n]+)", re.M)
_PYTEST = re.compile(r"(^|[\s/;&|(])(py\.test|pytest)\b")


class Verdict(BaseModel):
    instance_id: str
    resolved: bool = False
    rule: str = ""
    partial: float = 0.0
    patch_applied: bool = False
    apply_method: str | None = None
    empty_patch: bool = False
    statuses: dict[str, str] = {}
    mismatched: dict[str, str] = {}
    source: str | None = None  # "junit" or "log": where the statuses were read
    test_exit_code: int | None = None
    test_duration: float = 0.0  # the test command alone; the rest of `duration` is overhead
    infra_failure: str | None = None
    note: str | None = None
    duration: float = 0.0
    spec_source: str | None = None  # which rule chose the test command (swebox.tasks.specs)
    default_command: bool = False  # the command was a documented default, not the dataset's
    reverted: list[str] = []  # test infrastructure the patch touched, put back to the base
    tampering_suspected: bool = False


class GradeOptions(BaseModel):
    backend: str = "docker"
    timeout: float = 1800.0
    log_format: str | None = None  # default: the spec's parser
    memory: str | None = None
    cpus: float | None = None
    test_command: str | None = None  # overrides every spec (`--test-command`)
    rules: list[TestRule] = []  # `[[tests]]` of the rules TOML


def patch_paths(patch: str) -> list[str]:
    """Paths a patch touches (old and new names), in order, without duplicates."""
    seen: dict[str, None] = {}
    for a, b in _DIFF_PATHS.findall(patch):
        seen.setdefault(a)
        seen.setdefault(b)
    for pair in _PLAIN_HEADERS.findall(patch):
        for name in pair:
            name = name.strip()
            if name != "/dev/null":
                parts = name.split("/", 1)
                seen.setdefault(parts[1] if len(parts) == 2 else name)
    return list(seen)


def grade(task: Task, patch: str, opts: GradeOptions | None = None) -> tuple[Verdict, str]:
    """Grade `patch` for `task`; returns the verdict and the test log."""
    opts = opts or GradeOptions()
    start = time.monotonic()
    verdict = Verdict(instance_id=task.instance_id, empty_patch=not patch.strip())
    log = ""
    try:
        limits = {k: v for k, v in (("memory", opts.memory), ("cpus", opts.cpus)) if v}
        if not task.run_image:
            raise BadInput(f"task {task.instance_id} names no image",
                           hint="give the task an `image`")
        spec = resolve_spec(task, opts.rules, opts.test_command)
        if spec is None:
            raise SweboxError(
                f"task {task.instance_id} has no test command: swebox knows no spec for "
                f"{task.repo or 'its repository'} in {task.language}",
                hint="pass --test-command, or add a [[tests]] rule to the rules TOML")
        verdict.spec_source, verdict.default_command = spec.source, spec.default
        with start_sandbox(task.run_image, backend=opts.backend, workdir=task.workdir,
                           task_id=task.instance_id, base_commit=task.base_commit or None,
                           lease=opts.timeout + 600, limits=limits) as sb:
            log = _run(sb, task, spec, patch, opts, verdict)
    except SweboxError as e:
        verdict.infra_failure = f"{type(e).__name__}: {e}"
    verdict.duration = round(time.monotonic() - start, 3)
    return verdict, log


def _run(sb: Sandbox, task: Task, spec: TestSpec, patch: str, opts: GradeOptions,
         verdict: Verdict) -> str:
    wd = spec.cwd or task.workdir
    base = task.base_commit
    if spec.checkout:  # the task is a branch of the image's repository (SWE-smith)
        res = sb.exec(["git", "checkout", "-q", "-f", spec.checkout], timeout=120, cwd=wd)
        if res.exit_code != 0:
            raise SweboxError(f"cannot check out {spec.checkout} in {wd}: "
                              f"{res.stderr.strip()[:200]}", hint="is this the task's image?")
        base = sb.exec(["git", "rev-parse", "HEAD"], timeout=60, cwd=wd).stdout.strip()
    if not verdict.empty_patch:
        applied = sb.apply_patch(patch, cwd=wd)
        verdict.patch_applied, verdict.apply_method = applied.applied, applied.method
        if not applied.applied:
            verdict.note = "patch_failed: no apply method could apply the patch"
            return applied.output
        verdict.reverted = revert_infrastructure(sb, base, patch_paths(patch), wd)
        verdict.tampering_suspected = bool(verdict.reverted)
    if spec.tests_from:  # the listed tests' files as the dataset ran them
        reset_to_base(sb, spec.tests_from, spec.test_files, wd)
    nothing_applied = verdict.empty_patch
    if spec.patch_file:
        # The image's script applies the patches itself, onto a base tree: it gets the cleaned
        # candidate, taken back out of the tree exactly (reverse apply: nothing else moves).
        cleaned = sb.diff(cwd=wd) if not verdict.empty_patch else ""
        nothing_applied = not cleaned.strip()
        sb.write_file(spec.patch_file, cleaned)
        if not nothing_applied:
            sb.exec(["git", "apply", "-R", spec.patch_file], timeout=300, cwd=wd)
    elif task.test_patch:
        # The hidden tests apply onto exactly what the dataset expects, whatever the candidate
        # did to their files.
        reset_to_base(sb, task.base_commit, patch_paths(task.test_patch), wd)
        if not spec.script:  # a row's own eval script applies its test patch itself
            hidden = sb.apply_patch(task.test_patch, cwd=wd)
            if not hidden.applied:
                verdict.infra_failure = "the task's test patch did not apply"
                return hidden.output
    token = secrets.token_hex(12)
    junit = f"/tmp/.swebox-{token}.xml"
    program = grading_program(spec, token, task.workdir, empty=nothing_applied)
    parser = opts.log_format or spec.parser
    # JUnit XML for pytest runs; R2E's keys (`Class.test`) are judged from the text log, as
    # R2E's own harness does, since XML class names cannot be mapped onto them reliably.
    uses_pytest = (parser == "pytest" and rule_for(task) != "r2e"
                   and (spec.runs_script or _PYTEST.search(spec.command) is not None))
    env = {"PYTHONNOUSERSITE": "1"}
    if uses_pytest:
        env["PYTEST_ADDOPTS"] = f"--junitxml={junit}"
    res = sb.exec(["/bin/sh", "-c", 'if command -v bash >/dev/null 2>&1; then exec bash -c "$1"'
                   '; else exec sh -c "$1"; fi', "swebox-test", program],
                  timeout=opts.timeout, cwd=task.workdir, env=env)
    verdict.test_duration = round(res.duration, 3)
    section, rc = between(res.output, token)
    verdict.test_exit_code = rc
    statuses: dict[str, str] = {}
    if uses_pytest:
        statuses = _junit(sb, junit, task)
        verdict.source = "junit" if statuses else None
    if not statuses:
        # Datasets built with whitespace-splitting parsers store ids cut at a space: map the
        # full ids onto those so an expected test is not reported missing.
        statuses = align_truncated_ids(parse_log(parser, section), _known_ids(task))
        verdict.source = "log"
    verdict.statuses = statuses
    judged = judge(task, statuses, spec)
    verdict.rule, verdict.partial = judged.rule, round(judged.partial, 4)
    verdict.mismatched, verdict.note = judged.mismatched, judged.note
    verdict.resolved = judged.resolved
    if res.timed_out:
        verdict.infra_failure = f"timeout after {opts.timeout:g}s"
    elif (rc is None or rc >= 128 or res.exit_code >= 128) and sb.oom_killed():
        verdict.infra_failure = "out of memory (the OOM killer ended a process)"
    elif not statuses:
        verdict.infra_failure = "no tests collected"
    if verdict.infra_failure:
        verdict.resolved = False
    return res.output


def _junit(sb: Sandbox, path: str, task: Task) -> dict[str, str]:
    try:
        data = sb.read_file(path)
    except SweboxError:
        return {}
    from swebox.grading.parsers import junit

    try:
        mapping = junit.parse(data.decode("utf-8", errors="replace"))
    except BadInput:  # cut short (the runner was killed mid-write): the text log decides
        return {}
    return junit.to_pytest_ids(mapping, _known_ids(task))


def _known_ids(task: Task) -> set[str]:
    return set(task.fail_to_pass) | set(task.pass_to_pass) | set(task.expected_output or {})


__all__ = ["GradeOptions", "Verdict", "grade", "patch_paths"]
