"""Reading, converting and summarising task files: what `swebox tasks ...` calls.

`convert` streams rows from the source through a reader into a writer. Rejected rows (malformed,
missing fields, duplicate ids) go to a rejects JSONL beside the output with where and why; the
good rows still convert. Both files are replaced atomically, so an interrupted conversion
leaves the previous output intact, never half of a new one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from swebox.errors import BadInput
from swebox.tasks.io import Reject, atomic_text
from swebox.tasks.model import Task
from swebox.tasks.readers import ReadOptions, read_hf, read_tasks
from swebox.tasks.resolver import ImageRules
from swebox.tasks.specs import TestRule, resolve_spec
from swebox.tasks.writers import WRITERS, WriteOptions, write_tasks


class ConvertReport(BaseModel):
    output: str
    fmt_out: str
    written: int = 0
    rejected: int = 0
    rejects_path: str | None = None
    warnings: int = 0
    first_rejects: list[str] = []


def _read_options(rules: ImageRules | None, r2e_id: str | None) -> ReadOptions:
    opts = ReadOptions(rules=rules or ImageRules())
    if r2e_id:
        try:
            r2e_id.format(repo_name="r", commit_hash="0" * 40)
        except (KeyError, IndexError, ValueError) as e:
            raise BadInput(f"bad R2E id template {r2e_id!r}: {e}",
                           hint="use {repo_name} and {commit_hash}, e.g. "
                           "'{repo_name}__{commit_hash:.12}'") from e
        opts.r2e_id_template = r2e_id
    return opts


def open_source(src: str | Path | None = None, fmt: str | None = None, *,
                hf: str | None = None, split: str = "train", rules: ImageRules | None = None,
                r2e_id: str | None = None) -> Iterator[Task | Reject]:
    """Tasks and rejects from a file or (with `hf`) a Hugging Face dataset."""
    opts = _read_options(rules, r2e_id)
    if hf:
        return read_hf(hf, split, fmt, opts)
    if src is None:
        raise BadInput("no input given", hint="pass a file, or --hf NAME --split SPLIT")
    return read_tasks(src, fmt, opts)


class _WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def convert(items: Iterator[Task | Reject], output: str | Path, to: str, *,
            rejects: str | Path | None = None, write_opts: WriteOptions | None = None
            ) -> ConvertReport:
    """Write the tasks of `items` to `output` in format `to`; rejects to `rejects`."""

    def run(rej: IO[str], report: ConvertReport) -> None:
        def tasks() -> Iterator[Task]:
            for item in items:
                if isinstance(item, Reject):
                    report.rejected += 1
                    if len(report.first_rejects) < 5:
                        report.first_rejects.append(f"{item.where}: {item.reason}")
                    rej.write(item.to_json() + "\n")
                else:
                    yield item

        report.written = write_tasks(tasks(), output, to, write_opts)

    return _reporting(output, to, rejects, run)


def convert_file(src: str | Path, output: str | Path, to: str, *, fmt: str | None = None,
                 rules: ImageRules | None = None, r2e_id: str | None = None,
                 rejects: str | Path | None = None, write_opts: WriteOptions | None = None,
                 workers: int | None = None) -> ConvertReport:
    """Convert a task file: in worker processes when the output format is written in chunks
    and more than one worker is allowed (same output as serial), else in this process."""
    from swebox.tasks.parallel import convert_parallel, default_workers

    src, output = Path(src), Path(output)
    if to not in WRITERS:
        raise BadInput(f"unknown output format {to!r}", hint=f"use one of {', '.join(WRITERS)}")
    n = default_workers() if workers is None else workers
    if n <= 1 or WRITERS[to].chunks(output) is None:
        items = open_source(src, fmt, rules=rules, r2e_id=r2e_id)
        return convert(items, output, to, rejects=rejects, write_opts=write_opts)
    if not src.is_file():
        raise BadInput(f"{src}: no such file", hint="check the path")
    opts = _read_options(rules, r2e_id)

    def run(rej: IO[str], report: ConvertReport) -> None:
        report.written, report.rejected, report.first_rejects = convert_parallel(
            src, output, to, rej, fmt=fmt, read_opts=opts, write_opts=write_opts, workers=n)

    return _reporting(output, to, rejects, run)


def _reporting(output: str | Path, to: str, rejects: str | Path | None,
               run: Callable[[IO[str], ConvertReport], None]) -> ConvertReport:
    """Runs a conversion with its rejects file (kept only if not empty) and warning count."""
    output = Path(output)
    rejects_path = Path(rejects) if rejects else output.with_name(output.name + ".rejects.jsonl")
    report = ConvertReport(output=str(output), fmt_out=to)
    counter = _WarningCounter()
    logging.getLogger("swebox.tasks").addHandler(counter)
    try:
        with atomic_text(rejects_path) as rej:
            run(rej, report)
    finally:
        logging.getLogger("swebox.tasks").removeHandler(counter)
    report.warnings = counter.count
    if report.rejected:
        report.rejects_path = str(rejects_path)
    else:
        rejects_path.unlink(missing_ok=True)
    return report


def find_task(items: Iterator[Task | Reject], instance_id: str) -> Task:
    for item in items:
        if isinstance(item, Task) and item.instance_id == instance_id:
            return item
    raise BadInput(f"no task with instance_id {instance_id!r}",
                   hint="list ids with `swebox tasks stats` or `swebox tasks images`")


_CHECKED = ("repo", "base_commit", "problem_statement", "image", "gold_patch", "test_patch")


def stats(items: Iterator[Task | Reject], tests: list[TestRule] | None = None) -> dict[str, Any]:
    """Counts by repository, source format and test spec (which rule decides each task's test
    command), and how many tasks miss each field; "test spec" counts tasks with none."""
    by_repo: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    by_spec: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    total = rejected = 0
    for item in items:
        if isinstance(item, Reject):
            rejected += 1
            continue
        total += 1
        by_repo[item.repo or "(none)"] += 1
        by_source[item.source_format] += 1
        for field in _CHECKED:
            if not getattr(item, field):
                missing[field] += 1
        if not (item.fail_to_pass or item.pass_to_pass or item.expected_output):
            missing["expected outcomes"] += 1
        spec = resolve_spec(item, tests)
        if spec is None:
            missing["test spec"] += 1
        else:
            by_spec[spec.source + (" (default)" if spec.default else "")] += 1
    return {"tasks": total, "rejected": rejected, "by_repo": dict(by_repo.most_common()),
            "by_source": dict(by_source.most_common()), "by_spec": dict(by_spec.most_common()),
            "missing": dict(missing.most_common())}


def image_rows(items: Iterator[Task | Reject], rules: ImageRules) -> Iterator[dict[str, Any]]:
    """Per task: the reference, the short local name and the mapped object-store path."""
    for item in items:
        if isinstance(item, Reject):
            continue
        ref = item.image or ""
        yield {"instance_id": item.instance_id, "image": ref,
               "local": rules.local_name(ref) if ref else "",
               "object": (rules.store_path(ref) or "") if ref else ""}
