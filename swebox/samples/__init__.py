"""Bundled sample tasks: small Python repositories with a real bug, a gold patch and hidden tests.

Each lives in `tasks/<name>/` as `task.json` (metadata, expected outcomes in both styles),
`repo/` (the tree at the base commit, without hidden tests), `gold.patch` and `test.patch`.
Their images are built on the test base image with /testbed a git repository whose base commit
is reproducible (fixed author, committer and dates), and are named in the real datasets'
conventions: SWE-bench's `sweb.eval.x86_64.<instance_id>` and R2E-Gym's
`<namespace>/<repo>_final:<commit>`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swebox.errors import BadInput
from swebox.tasks.model import Task

TASKS_DIR = Path(__file__).parent / "tasks"
DEFAULT_BASE_IMAGE = "swebox/testbase:bookworm"
R2E_NAMESPACE = "swebox-samples"


@dataclass
class SampleTask:
    name: str
    path: Path
    instance_id: str
    repo: str
    image_style: str
    base_commit: str
    problem_statement: str
    test_command: str
    fail_to_pass: list[str]
    pass_to_pass: list[str]
    expected_output: dict[str, str]
    meta: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def image(self) -> str:
        """The image name in the convention of the dataset family the task imitates."""
        if self.image_style == "r2e":
            return f"{R2E_NAMESPACE}/{self.repo.split('/')[1].lower()}_final:{self.base_commit}"
        return f"sweb.eval.x86_64.{self.instance_id.lower()}:latest"

    @property
    def gold_patch(self) -> str:
        return (self.path / "gold.patch").read_text()

    @property
    def test_patch(self) -> str:
        return (self.path / "test.patch").read_text()

    def to_task(self) -> Task:
        """The sample as a swebox Task (both expected-outcome styles, image by convention)."""
        return Task(instance_id=self.instance_id, repo=self.repo, base_commit=self.base_commit,
                    problem_statement=self.problem_statement, image=self.image,
                    local_image=self.image, test_command=self.test_command,
                    fail_to_pass=self.fail_to_pass, pass_to_pass=self.pass_to_pass,
                    expected_output=self.expected_output, gold_patch=self.gold_patch,
                    test_patch=self.test_patch, version=self.meta.get("version"),
                    created_at=self.meta.get("created_at"), source_format="swebox",
                    extra={"hints_text": self.meta.get("hints_text", ""),
                           "image_style": self.image_style})

    def digest(self, base_image_id: str) -> str:
        """Content hash of everything the image is built from."""
        h = hashlib.sha256(base_image_id.encode())
        for f in sorted(p for p in (self.path / "repo").rglob("*") if p.is_file()):
            h.update(str(f.relative_to(self.path)).encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
        h.update(self.base_commit.encode())
        return h.hexdigest()[:16]


def load_task(path: Path) -> SampleTask:
    meta_file = path / "task.json"
    try:
        meta = json.loads(meta_file.read_text())
        return SampleTask(
            name=path.name, path=path, instance_id=meta["instance_id"], repo=meta["repo"],
            image_style=meta["image_style"], base_commit=meta["base_commit"],
            problem_statement=meta["problem_statement"], test_command=meta["test_command"],
            fail_to_pass=list(meta["FAIL_TO_PASS"]), pass_to_pass=list(meta["PASS_TO_PASS"]),
            expected_output=dict(meta["expected_output"]), meta=meta)
    except (OSError, ValueError, KeyError) as e:
        raise BadInput(f"{meta_file}: not a valid sample task ({e})") from e


def load_tasks(names: list[str] | None = None, root: Path = TASKS_DIR) -> list[SampleTask]:
    """The bundled sample tasks (all, or those named)."""
    found = {p.name: p for p in sorted(root.iterdir()) if (p / "task.json").is_file()}
    if names:
        unknown = [n for n in names if n not in found]
        if unknown:
            raise BadInput(f"unknown sample task(s) {', '.join(unknown)}",
                           hint=f"choose from {', '.join(found)}")
        return [load_task(found[n]) for n in names]
    return [load_task(p) for p in found.values()]
