"""The shell program the grader runs for a `TestSpec`.

Whatever the spec (one command, the row's own SWE-bench 5 eval script, a script in the image),
the runner's output is framed by two markers made of a random per-run token and followed by the
runner's exit code, so the statuses are read only from between them and text a patch prints
cannot pose as the runner's. A row's script carries SWE-bench's fixed markers
(`: '>>>>> Start Test Output'`), which are swapped for this run's; a script with none is framed
whole. The conda env is activated only when the image has it.
"""

from __future__ import annotations

import shlex

from swebox.tasks.specs import TestSpec

_START = ">>>>> Start Test Output"
_END = ">>>>> End Test Output"
_SHEBANG_AND_FLAGS = ("#!/bin/bash", "#!/usr/bin/env bash", "set -uxo pipefail", "set -uo pipefail")


def activation(conda_env: str | None) -> list[str]:
    if not conda_env:
        return []
    env = shlex.quote(conda_env)
    return ["if [ -f /opt/miniconda3/bin/activate ]; then . /opt/miniconda3/bin/activate && "
            f"conda activate {env}; fi"]


def grading_program(spec: TestSpec, token: str, workdir: str, empty: bool = False) -> str:
    """The bash program for one grading run (see the module docstring); `empty`: the candidate
    patch is empty (a spec may run another script then)."""
    begin, end = f"echo SWEBOX-BEGIN-{token}", f"echo SWEBOX-END-{token} $swebox_rc"
    lines = [*activation(spec.conda_env), f"cd {shlex.quote(spec.cwd or workdir)}",
             *spec.setup]
    if spec.script:
        body = [ln for ln in spec.script.strip("\n").split("\n")
                if ln.strip() not in _SHEBANG_AND_FLAGS]
        starts = [i for i, ln in enumerate(body) if _START in ln]
        ends = [i for i, ln in enumerate(body) if _END in ln]
        if starts and ends and starts[0] < ends[-1]:
            i, j = starts[0], ends[-1]
            body = [*body[:i], begin, *body[i + 1:j], "swebox_rc=$?", "echo", end,
                    *body[j + 1:]]
            return "\n".join([*lines, *body]) + "\n"
        return "\n".join([*lines, begin, *body, "swebox_rc=$?", "echo", end]) + "\n"
    path = spec.empty_script_path if empty and spec.empty_script_path else spec.script_path
    command = f"bash {shlex.quote(path)}" if path else spec.command
    return "\n".join([*lines, begin, command, "swebox_rc=$?", "echo", end]) + "\n"


def between(output: str, token: str) -> tuple[str, int | None]:
    """The runner's output between this run's markers, and its exit code from the end marker.
    Without both markers (the program died first) the whole output and no exit code."""
    begin, end = f"SWEBOX-BEGIN-{token}", f"SWEBOX-END-{token}"
    i = output.find(begin + "\n")
    j = output.rfind("\n" + end + " ")
    if i < 0 or j < 0 or j < i:
        return output, None
    tail = output[j + len(end) + 2:].split("\n", 1)[0].strip()
    return output[i + len(begin) + 1: j], int(tail) if tail.lstrip("-").isdigit() else None
