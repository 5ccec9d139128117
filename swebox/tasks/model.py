"""The canonical task: one model every reader produces and every writer consumes.

The JSONL form is `Task.model_dump(mode="json")` with keys in declaration order, one task a line;
`schema_version` says which form a line has. Fields a source has that the model has no place for
go to `extra` unchanged, so nothing is dropped and a writer for the same family can give them
back.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = 1

Status = Literal["PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL"]
STATUSES: tuple[str, ...] = ("PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL")

SourceFormat = Literal["swebox", "csv", "openhands", "r2e", "swebench", "swegym", "swesmith",
                       "multiswebench", "graphplanner"]


class Task(BaseModel):
    """One SWE task, whatever dataset it came from."""

    # Numbers in text fields (a numeric instance id, version 5.0, an int test id) become
    # strings during validation, in pydantic's compiled core rather than a Python loop.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    schema_version: int = SCHEMA_VERSION
    instance_id: str = Field(min_length=1)
    repo: str = ""
    base_commit: str = ""
    problem_statement: str = ""
    image: str | None = Field(default=None, description="image reference as the source gave it")
    local_image: str | None = Field(default=None, description="short local name to run")
    workdir: str = "/testbed"
    test_command: str | None = None
    fail_to_pass: list[str] = Field(default_factory=list)
    pass_to_pass: list[str] = Field(default_factory=list)
    expected_output: dict[str, str] | None = Field(
        default=None, description="R2E-style expected {test: status} map")
    gold_patch: str = ""
    test_patch: str = ""
    language: str = "python"
    version: str | None = None
    created_at: str | None = None
    source_format: SourceFormat = "swebox"
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("instance_id")
    @classmethod
    def _strip_id(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("instance_id is empty")
        return v

    @field_validator("expected_output")
    @classmethod
    def _statuses(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return None
        bad = {k: s for k, s in v.items() if s not in STATUSES}
        if bad:
            first = next(iter(bad.items()))
            raise ValueError(f"expected_output has {len(bad)} unknown status(es), e.g. "
                             f"{first[0]!r}: {first[1]!r} (allowed: {', '.join(STATUSES)})")
        return v

    @property
    def run_image(self) -> str | None:
        """The image a sandbox should start: the local name when one is known."""
        return self.local_image or self.image

    @property
    def owner(self) -> str:
        return self.repo.split("/", 1)[0] if "/" in self.repo else ""

    @property
    def repo_name(self) -> str:
        return self.repo.rsplit("/", 1)[-1]

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
