"""Multi-SWE-bench rows: org, repo, number, base.sha, fix_patch, test_patch, and test maps
(f2p / p2p / s2p / n2p, keyed by test, each {run, test, fix}).

FAIL_TO_PASS is every test that must pass after the fix but did not before: the keys of
f2p_tests, s2p_tests (skipped before) and n2p_tests (absent before), as Multi-SWE-bench's own
resolved rule requires them all; PASS_TO_PASS is the keys of p2p_tests. The full maps,
resolved_issues and the run results stay in `extra` for the transition rules. The problem
statement is built from the resolved issues. The images hold the repository at /home/<repo>
(with the run scripts beside it in /home), which becomes the workdir.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swebox.tasks.model import Task
from swebox.tasks.readers.common import ReadOptions, rest, text

NAMES = ("multiswebench",)
_USED = {"instance_id", "org", "repo", "number", "base", "fix_patch", "test_patch"}
_EXT = {".java": "java", ".ts": "typescript", ".tsx": "typescript", ".js": "javascript",
        ".go": "go", ".rs": "rust", ".c": "c", ".h": "c", ".cpp": "cpp", ".cc": "cpp",
        ".hpp": "cpp", ".py": "python"}


def detect(row: dict[str, Any]) -> bool:
    return detect_name(row) is not None


def detect_name(row: dict[str, Any]) -> str | None:
    if {"org", "repo", "number"} <= row.keys() and ({"fix_patch", "base"} & row.keys()):
        return "multiswebench"
    return None


def _language(row: dict[str, Any], patch: str) -> str:
    for key in ("language", "lang"):
        if row.get(key):
            return str(row[key]).lower()
    counts: dict[str, int] = {}
    for line in patch.splitlines():
        if line.startswith("+++ b/"):
            for ext, lang in _EXT.items():
                if line.endswith(ext):
                    counts[lang] = counts.get(lang, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else "unknown"


def _statement(row: dict[str, Any]) -> str:
    issues = row.get("resolved_issues") or []
    parts = []
    for issue in issues if isinstance(issues, list) else []:
        if isinstance(issue, dict):
            title, body = text(issue, "title"), text(issue, "body")
            parts.append(f"{title}\n\n{body}".strip())
    if not parts:
        parts.append(f"{text(row, 'title')}\n\n{text(row, 'body')}".strip())
    return "\n\n".join(p for p in parts if p)


def convert_for(name: str) -> Callable[[dict[str, Any], ReadOptions], Task]:
    def convert(row: dict[str, Any], opts: ReadOptions) -> Task:
        org, repo, number = text(row, "org"), text(row, "repo"), row["number"]
        base = row.get("base") or {}
        if not isinstance(base, dict) or not base.get("sha"):
            raise ValueError("base.sha is missing")
        fix = text(row, "fix_patch")
        maps = {k: row.get(k) or {} for k in ("f2p_tests", "s2p_tests", "n2p_tests",
                                                 "p2p_tests")}
        bad = [k for k, v in maps.items() if not isinstance(v, dict)]
        if bad:
            raise ValueError(f"{', '.join(bad)} must be objects keyed by test")
        f2p = {**maps["f2p_tests"], **maps["s2p_tests"], **maps["n2p_tests"]}
        p2p = maps["p2p_tests"]
        image = opts.rules.multiswebench(org, repo, number)
        return Task(
            instance_id=text(row, "instance_id") or f"{org}__{repo}-{number}",
            repo=f"{org}/{repo}", base_commit=str(base["sha"]), workdir=f"/home/{repo}",
            problem_statement=_statement(row), image=image,
            local_image=opts.rules.local_name(image),
            fail_to_pass=sorted(f2p), pass_to_pass=sorted(p2p), gold_patch=fix,
            test_patch=text(row, "test_patch"), language=_language(row, fix),
            source_format="multiswebench", extra=rest(row, _USED | {"base"}) | {"base": base})
    return convert
