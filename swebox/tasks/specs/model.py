"""What running a task's tests means: the spec a resolver picks for each task.

A `TestSpec` is data: the command (or whole script) the family's own harness runs, the log
format to parse, the environment set-up run in the same shell first, and the family's grading
quirks (SWE-smith's "missing means passed", SWE-bench 5's `fail_only`). `TestRule` is a user's
override from the rules TOML (`[[tests]]`).
"""

from __future__ import annotations

import fnmatch
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EvalType = Literal["pass_and_fail", "fail_only"]


class TestSpec(BaseModel):
    """How one task's tests run and are read."""

    model_config = ConfigDict(extra="forbid")
    __test__ = False  # not a pytest test class

    command: str = Field(default="", description="the test command, one shell line")
    script: str | None = Field(
        default=None, description="a whole script to run instead of `command` (SWE-bench 5's "
        "eval_script, Multi-SWE-bench's fix-run.sh); it applies the test patch itself")
    script_path: str | None = Field(
        default=None, description="a script already in the image to run instead (bash PATH)")
    patch_file: str | None = Field(
        default=None, description="where the script expects the candidate patch "
        "(Multi-SWE-bench: /home/fix.patch); the grader writes the cleaned patch there")
    empty_script_path: str | None = Field(
        default=None, description="the image's script for an empty candidate (Multi-SWE-bench: "
        "/home/test-run.sh, the test patch alone), where `script_path` needs a patch")
    checkout: str | None = Field(
        default=None, description="a git ref checked out before the candidate applies "
        "(SWE-smith: the task's branch)")
    tests_from: str | None = Field(
        default=None, description="a ref whose versions of `test_files` are restored before "
        "the run (SWE-smith: the branch's commit before its test-removal commit)")
    test_files: list[str] = Field(default_factory=list,
                                  description="the files restored from `tests_from`")
    parser: str = Field(default="pytest", description="log format (swebox.grading.parsers)")
    setup: list[str] = Field(default_factory=list,
                             description="shell lines run first in the same shell")
    conda_env: str | None = Field(
        default=None, description="activate this conda env first when the image has "
        "/opt/miniconda3 (SWE-bench's images run their tests in `testbed`)")
    cwd: str | None = Field(default=None, description="working directory (default: workdir)")
    source: str = Field(description="which rule decided: row, swebench-table, swegym-table, "
                        "swesmith, rebench, multiswebench, r2e, rules, override, default")
    default: bool = Field(default=False,
                          description="a documented default, not the dataset's own command")
    missing_passes: bool = Field(
        default=False, description="a listed test absent from the log counts as passed "
        "(SWE-smith's rule)")
    eval_type: EvalType = "pass_and_fail"
    skipped_maintains: bool = Field(
        default=False, description="a SKIPPED PASS_TO_PASS test is maintained, not failed "
        "(SWE-bench 5's rule for rows with their own eval_script)")
    hidden: list[str] = Field(
        default_factory=list, description="paths the agent's sandbox must never see; they exist "
        "only in the grading sandbox (R2E's run_tests.sh and r2e_tests)")
    note: str | None = None

    @property
    def runs_script(self) -> bool:
        return bool(self.script or self.script_path)


class TestRule(BaseModel):
    """`[[tests]]` in the rules TOML: a spec for the tasks it matches (repo or instance id,
    globs), taking precedence over every dataset table."""

    model_config = ConfigDict(extra="forbid")
    __test__ = False

    repo: str | None = Field(default=None, description="glob over `owner/name`")
    instance_id: str | None = Field(default=None, description="glob over the instance id")
    command: str | None = None
    parser: str | None = None
    setup: list[str] | None = None
    conda_env: str | None = None

    def matches(self, repo: str, instance_id: str) -> bool:
        if self.repo is None and self.instance_id is None:
            return False
        return ((self.repo is None or fnmatch.fnmatchcase(repo, self.repo))
                and (self.instance_id is None
                     or fnmatch.fnmatchcase(instance_id, self.instance_id)))
