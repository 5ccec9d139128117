"""`swebox tasks convert|show|stats|images`: task datasets in every shape."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.table import Table

from swebox.cli import err_console, out_console
from swebox.tasks.io import Reject
from swebox.tasks.model import Task
from swebox.tasks.resolver import ImageRules

app = typer.Typer(help="Read, convert and inspect task datasets.", no_args_is_help=True)

SRC = typer.Argument(None, help="Input file (.jsonl, .json, .parquet, .csv).")
FROM = typer.Option(None, "--from", "-f", help="Force the input format (default: detect).")
HF = typer.Option(None, "--hf", help="Read a Hugging Face dataset (needs `datasets`).")
SPLIT = typer.Option("train", "--split", help="Dataset split (with --hf; and the split "
                     "name written by rllm/skyrl exports).")
RULES = typer.Option(None, "--rules", help="Rules TOML (image namespaces and rewrite rules, "
                     "[[tests]] overrides).")
R2E_ID = typer.Option("{repo_name}__{commit_hash:.12}", "--r2e-id",
                      help="How R2E rows' instance ids are derived (a format string).")


class _Stderr(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"[yellow]warning:[/] {record.getMessage()}", soft_wrap=True)


def _warnings_to_stderr() -> None:
    log = logging.getLogger("swebox.tasks")
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        log.addHandler(_Stderr())
        log.propagate = False


def _source(src: Path | None, fmt: str | None, hf: str | None, split: str,
            rules_path: Path | None, r2e_id: str = R2E_ID.default
            ) -> tuple[Iterator[Task | Reject], ImageRules]:
    from swebox.tasks.convert import open_source
    from swebox.tasks.resolver import load_rules

    _warnings_to_stderr()
    rules = load_rules(rules_path)
    return open_source(src, fmt, hf=hf, split=split, rules=rules, r2e_id=r2e_id), rules


@app.command("convert")
def convert(
    src: Path = SRC, fmt_in: str = FROM, hf: str = HF, split: str = SPLIT,
    to: str = typer.Option(..., "--to", "-t", help="Output format: swebox, openhands, rllm, "
                           "skyrl, graphplanner, swebench."),
    output: Path = typer.Option(..., "--output", "-o", help="Output file."),
    rules: Path = RULES,
    rejects: Path = typer.Option(None, "--rejects", help="Rejects file (default: "
                                 "OUTPUT.rejects.jsonl)."),
    data_source: str = typer.Option(None, "--data-source", help="data_source column "
                                    "(rllm, skyrl)."),
    max_steps: int = typer.Option(6, "--max-steps", help="max_steps (graphplanner)."),
    env_class: str = typer.Option("null", "--env-class", help="env_class column (skyrl): "
                                  "'swebox' for swebox's SkyRL env, 'null' for SkyRL's "
                                  "mini-swe-agent generator."),
    r2e_id: str = R2E_ID,
    workers: int = typer.Option(None, "--workers", "-j", min=1,
                                help="Worker processes (default: one per core; 1: serial)."),
) -> None:
    """Convert a task file (or HF dataset) to another format; bad rows go to a rejects file."""
    from swebox.errors import BadInput
    from swebox.tasks.convert import convert as run
    from swebox.tasks.convert import convert_file
    from swebox.tasks.resolver import load_rules
    from swebox.tasks.writers import WriteOptions

    opts = WriteOptions(split=split, data_source=data_source, max_steps=max_steps,
                        env_class=env_class)
    if hf:
        items, _ = _source(src, fmt_in, hf, split, rules, r2e_id)
        report = run(items, output, to, rejects=rejects, write_opts=opts)
    else:
        if src is None:
            raise BadInput("no input given", hint="pass a file, or --hf NAME --split SPLIT")
        _warnings_to_stderr()
        report = convert_file(src, output, to, fmt=fmt_in, rules=load_rules(rules),
                              r2e_id=r2e_id, rejects=rejects, write_opts=opts, workers=workers)
    out_console.print(f"wrote {report.written} tasks to {report.output} ({report.fmt_out})")
    if report.rejected:
        for line in report.first_rejects:
            err_console.print(f"  rejected {line}", soft_wrap=True, markup=False)
        raise BadInput(f"{report.rejected} row(s) rejected; the {report.written} good rows "
                       f"were converted", hint=f"see {report.rejects_path}")


@app.command("show")
def show(instance_id: str = typer.Argument(..., help="The task's instance_id."),
         src: Path = typer.Option(None, "--tasks", "-i", help="Task file."),
         fmt_in: str = FROM, hf: str = HF, split: str = SPLIT, rules: Path = RULES,
         r2e_id: str = R2E_ID) -> None:
    """Print one task as JSON (swebox form), with the test spec grading will use."""
    from swebox.tasks.convert import find_task
    from swebox.tasks.specs import resolve_spec

    items, image_rules = _source(src, fmt_in, hf, split, rules, r2e_id)
    task = find_task(items, instance_id)
    spec = resolve_spec(task, image_rules.tests)
    data = task.to_json_dict()
    data["test_spec"] = spec.model_dump(mode="json", exclude_defaults=True) if spec else None
    print(json.dumps(data, indent=2, ensure_ascii=False))


@app.command("stats")
def stats(src: Path = SRC, fmt_in: str = FROM, hf: str = HF, split: str = SPLIT,
          rules: Path = RULES,
          json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts by repository, source and test spec, and missing fields."""
    from swebox.tasks.convert import stats as compute

    items, image_rules = _source(src, fmt_in, hf, split, rules)
    result = compute(items, image_rules.tests)
    if json_out:
        print(json.dumps(result, indent=2))
        return
    out_console.print(f"{result['tasks']} tasks, {result['rejected']} rejected rows")
    for title, key in (("repository", "by_repo"), ("source", "by_source"),
                       ("test spec", "by_spec"), ("missing field", "missing")):
        table = Table(title, "tasks")
        for name, n in result[key].items():
            table.add_row(name, str(n))
        out_console.print(table)


@app.command("images")
def images(src: Path = SRC, fmt_in: str = FROM, hf: str = HF, split: str = SPLIT,
           rules: Path = RULES,
           json_out: bool = typer.Option(False, "--json", help="Print JSON lines.")) -> None:
    """Per task: the image reference, its short local name and its object-store path."""
    from swebox.tasks.convert import image_rows

    items, image_rules = _source(src, fmt_in, hf, split, rules)
    rows = image_rows(items, image_rules)
    if json_out:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table("instance_id", "image", "local name", "object path")
    for row in rows:
        table.add_row(row["instance_id"], row["image"], row["local"], row["object"] or "-")
    out_console.print(table)
