"""OpenHands `run_infer` JSONL for instance-image runs (seed 000, USE_INSTANCE_IMAGE=true).

One object a line, always these keys in this order: instance_id, repo, base_commit, version,
problem_statement, image_storage_uri, FAIL_TO_PASS, PASS_TO_PASS, hints_text, language.

- `version` is the task's version, else the instance id: OpenHands names the workspace
  `<repo>__<version>`, and the instance id keeps that name unique per task.
- `image_storage_uri` is the short local name, so OpenHands starts the image that was loaded
  locally instead of pulling from a registry it may not reach.
- FAIL_TO_PASS / PASS_TO_PASS are JSON-encoded strings: run_infer indexes both columns and
  stringifies non-strings with `str(list)`, which is not JSON; giving strings skips that.
- `language` is read by the multi_swe_bench runner and ignored by the swe_bench one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.writers.common import JsonlChunks, WriteOptions, write_chunked
from swebox.tasks.writers.swebench import encode_tests, extra_text

NAME = "openhands"
DESCRIPTION = "OpenHands run_infer JSONL (instance images, local image names)"


def _row(task: Task) -> dict[str, Any]:
    return {
        "instance_id": task.instance_id,
        "repo": task.repo,
        "base_commit": task.base_commit,
        "version": task.version or task.instance_id,
        "problem_statement": task.problem_statement,
        "image_storage_uri": task.run_image or "",
        "FAIL_TO_PASS": encode_tests(task.fail_to_pass),
        "PASS_TO_PASS": encode_tests(task.pass_to_pass),
        "hints_text": extra_text(task, "hints_text"),
        "language": task.language,
    }


CHUNKS = JsonlChunks(_row)


def chunks(path: Path) -> JsonlChunks:
    return CHUNKS


def write(tasks: Iterable[Task], path: Path, opts: WriteOptions) -> int:
    return write_chunked(CHUNKS, tasks, path, opts)
