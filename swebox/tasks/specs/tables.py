"""Per-repository, per-version spec tables (SWE-bench, SWE-Gym), kept as TOML data beside this
file, and the harness's rule for turning a test patch into test arguments.

Table format (see swebench.toml): `[[repo]]` with `name`, `parser`, optional `directives`
("paths", the default, or "django", or "mypy") and `[[repo.spec]]` groups of `versions` sharing a
`test_cmd`, eval-time `env` commands and the `install` the harness re-runs before testing.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from functools import cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

# The harness drops files with these endings from the test arguments (note "csv" without a
# dot: the harness spells it so, and a file named e.g. `testcsv` is dropped too).
NON_TEST_EXTS = (".json", ".png", "csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml",
                 ".yaml", ".toml")
_DIFF_B = re.compile(r"diff --git a/.* b/(.*)")
_MYPY_CASE = re.compile(r"\[case ([^\]]+)\]")


class VersionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    versions: list[str]
    test_cmd: str
    env: list[str] = []
    install: str | None = None


class RepoSpecs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    parser: str
    directives: str = "paths"
    spec: list[VersionSpec]

    def for_version(self, version: str | None) -> VersionSpec | None:
        """The first group listing `version` (entries may be globs, e.g. "*")."""
        for group in self.spec:
            if any(v == version or (version is not None and any(c in v for c in "*?[")
                                    and fnmatch.fnmatchcase(version, v))
                   or (v == "*" and version is None) for v in group.versions):
                return group
        return None


@cache
def table(name: str) -> dict[str, RepoSpecs]:
    """The table `name` (swebench, swegym) keyed by repository."""
    data: dict[str, Any] = tomllib.loads(
        resources.files("swebox.tasks.specs").joinpath(f"{name}.toml").read_text())
    repos = [RepoSpecs.model_validate(r) for r in data.get("repo", [])]
    return {r.name: r for r in repos}


def directives_from_patch(test_patch: str, rule: str = "paths") -> list[str]:
    """Test arguments from a test patch, as SWE-bench's harness derives them: the post-image
    path of every file it touches, minus non-test extensions; for Django, dotted module names
    relative to tests/; for mypy (SWE-Gym), a quoted `-k` expression of its `[case X]` names."""
    if rule == "mypy":  # SWE-Gym: one -k expression naming the patch's data-driven cases
        return ['"' + " or ".join(_MYPY_CASE.findall(test_patch)) + '"']
    found = [d for d in _DIFF_B.findall(test_patch)
             if not any(d.endswith(ext) for ext in NON_TEST_EXTS)]
    if rule == "django":
        out = []
        for d in found:
            d = d[: -len(".py")] if d.endswith(".py") else d
            d = d[len("tests/"):] if d.startswith("tests/") else d
            out.append(d.replace("/", "."))
        return out
    return found
