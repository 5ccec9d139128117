"""`swebox images fetch|push`: task images from object-store tarballs or registries, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from swebox.cli import err_console, out_console
from swebox.cli.render import JSON_LINES, as_dict, emit, notes

app = typer.Typer(help="Get task images onto this engine, or save them to object storage.",
                  no_args_is_help=True)

TASKS = typer.Option(..., "--tasks", "-t", help="Task file.")
RULES = typer.Option(None, "--rules", help="Image rules TOML (rewrite rules map references "
                     "to short local names and object-store tarballs).")
BACKEND = typer.Option("docker", "--backend", "-b", help="docker or podman.")
ENDPOINT = typer.Option(None, "--endpoint", help="S3 endpoint URL (S3-compatible stores).")


def _images(tasks: Path) -> list[str]:
    from swebox.tasks.model import Task
    from swebox.tasks.readers import read_tasks

    refs: dict[str, None] = {}
    for item in read_tasks(tasks):
        if isinstance(item, Task) and item.image:
            refs.setdefault(item.image)
    return list(refs)


@app.command("fetch")
def fetch(tasks: Path = TASKS, rules: Path = RULES, backend: str = BACKEND,
          endpoint: str = ENDPOINT,
          concurrency: int = typer.Option(2, "--concurrency", "-j", min=1),
          pull_concurrency: int = typer.Option(3, "--pull-concurrency", min=1,
                                               help="Pulls at a time from any one registry."),
          mirror: list[str] = typer.Option([], "--mirror", help="REGISTRY=MIRROR, tried "
                                           "before the registry (repeatable), e.g. "
                                           "docker.io=mirror.internal:5000."),
          keep_free: str = typer.Option("2G", "--keep-free", help="Free space to leave on the "
                                        "engine's data root; least recently used swebox images "
                                        "are pruned to keep it (0: only the image's own need)."),
          drop_long_name: bool = typer.Option(False, "--drop-long-name",
                                              help="Untag the long name after tagging the "
                                              "short one."),
          output: Path = typer.Option(None, "--output", "-o", help="Write the tasks back with "
                                      "local image names: in the input's own format, or in "
                                      "--to's."),
          to: str = typer.Option(None, "--to", help="Write -o in this task format instead "
                                 "(e.g. swebox, which also keeps the original name)."),
          json_out: bool = JSON_LINES) -> None:
    """Make every task image present: skip, stream-load from a tarball, or pull.

    Re-running resumes: images already present are skipped. A failure is listed with its
    reason and never stops the others. With --json, failures are lines too (action
    "failed", with the error)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from swebox.errors import BadInput, SweboxError
    from swebox.images import supply
    from swebox.images.budget import parse_size
    from swebox.jobs import run_all
    from swebox.sandbox.models import make_config
    from swebox.tasks.resolver import load_rules

    make_config(image="-", backend=backend)
    image_rules = load_rules(rules)
    for item in mirror:
        registry, sep, host = item.partition("=")
        if not sep or not registry or not host:
            raise BadInput(f"bad --mirror {item!r}", hint="write REGISTRY=MIRROR")
        image_rules.mirrors.setdefault(registry, []).append(host)
    budget_bytes = parse_size(keep_free)
    supply.PULL_SLOTS = pull_concurrency
    refs = _images(tasks)
    sizes = _tarball_sizes(refs, image_rules, endpoint)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(), console=err_console,
                        transient=True)
    bar = progress.add_task(f"images 0/{len(refs)}", total=sum(sizes.values()) or None)
    finished = [0]

    def one(ref: str) -> tuple[str, supply.FetchResult | str]:
        try:
            result = supply.fetch_image(
                ref, image_rules, backend=backend, drop_long_name=drop_long_name,  # type: ignore[arg-type]
                endpoint=endpoint, keep_free=budget_bytes, tarball_size=sizes.get(ref) or None,
                on_bytes=lambda n: progress.advance(bar, n))
            if result.action == "present":  # nothing streamed: its bytes count as done
                progress.advance(bar, sizes.get(ref, 0))
            out: tuple[str, supply.FetchResult | str] = (ref, result)
        except SweboxError as e:
            progress.advance(bar, sizes.get(ref, 0))
            out = (ref, str(e))
        finished[0] += 1
        progress.update(bar, description=f"images {finished[0]}/{len(refs)}")
        return out

    with progress:
        outcomes = list(run_all(one, refs, concurrency))
    done = [r for _, r in outcomes if not isinstance(r, str)]
    failed = [(ref, r) for ref, r in outcomes if isinstance(r, str)]
    table = Table("image", "local name", "action", "MiB", "seconds",
                  title=f"{len(done)} ready, {len(failed)} failed")
    rows: list[supply.FetchResult | tuple[str, str]] = [
        *sorted(done, key=lambda r: r.reference), *failed]
    emit(rows, json_out, table,
         lambda r: None if isinstance(r, tuple) else (
             r.reference, r.local, r.action, f"{r.bytes / 2**20:.1f}", f"{r.seconds:.1f}"),
         _failure_or_dict)
    for ref, why in failed:
        err_console.print(f"[red]failed[/] {ref}: {why}", soft_wrap=True, markup=False)
    if output is not None:
        _write_back(tasks, output, image_rules, {r.reference: r.local for r in done}, to,
                    notes(json_out))
    if failed:
        raise typer.Exit(1)


def _tarball_sizes(refs: list[str], rules: object, endpoint: str | None) -> dict[str, int]:
    """Object sizes of the tarballs to stream, for the progress bar (0 when unknown)."""
    from swebox.errors import SweboxError
    from swebox.images import stores

    out: dict[str, int] = {}
    for ref in refs:
        uri = rules.store_path(ref)  # type: ignore[attr-defined]
        if uri:
            try:
                out[ref] = stores.stat(uri, endpoint=endpoint).size or 0
            except SweboxError:
                out[ref] = 0  # fetch reports it, with its reason
    return out


def _failure_or_dict(row: Any) -> dict[str, Any]:
    """A JSON line of fetch or build: the result, or (reference, error) of a failure."""
    if isinstance(row, tuple):
        return {"reference": row[0], "action": "failed", "error": row[1]}
    return as_dict(row)


def _write_back(tasks: Path, output: Path, rules: object, local: dict[str, str],
                to: str | None, say: Console = out_console) -> None:
    if to:
        from swebox.tasks.convert import convert, open_source

        items = open_source(tasks, rules=rules)  # type: ignore[arg-type]
        report = convert(items, output, to)
        say.print(f"wrote {report.written} tasks with local image names to {output}")
        return
    from swebox.tasks.rewrite import replace_values

    result = replace_values(tasks, output, {k: v for k, v in local.items() if k != v})
    say.print(f"wrote {output}: {result.rows} rows, {result.changed_rows} with local "
              "image names")


@app.command("build")
def build(tasks: Path = TASKS, recipe: Path = typer.Option(..., "--recipe", help="Recipe "
                                                          "TOML (see docs/images.md)."),
          rules: Path = RULES, backend: str = BACKEND,
          build_cpus: int = typer.Option(None, "--build-cpus", min=1, help="CPUs all builds "
                                         "together may use (default: no limit)."),
          concurrency: int = typer.Option(1, "--concurrency", "-j", min=1),
          output: Path = typer.Option(None, "--output", "-o", help="Write the tasks back with "
                                      "the derived image names, in the input's format."),
          json_out: bool = JSON_LINES) -> None:
    """Prebuild the derived image of every task image (reused when its tag exists).

    With --json, failures are lines too (action "failed", with the error)."""
    from swebox.errors import SweboxError
    from swebox.images.derive import Derived, derive, load_recipe
    from swebox.jobs import run_all
    from swebox.sandbox.models import make_config
    from swebox.tasks.resolver import load_rules

    make_config(image="-", backend=backend)
    the_recipe = load_recipe(recipe)
    image_rules = load_rules(rules)
    refs = _images(tasks)

    def one(ref: str) -> tuple[str, Derived | str]:
        try:
            return ref, derive(image_rules.local_name(ref), the_recipe, backend=backend,  # type: ignore[arg-type]
                               build_cpus=build_cpus)
        except SweboxError as e:
            return ref, str(e)

    with err_console.status(f"building {len(refs)} derived images"):
        outcomes = list(run_all(one, refs, concurrency))
    done = {ref: r for ref, r in outcomes if not isinstance(r, str)}
    failed = [(ref, r) for ref, r in outcomes if isinstance(r, str)]
    table = Table("base", "derived image", "action", "seconds",
                  title=f"{len(done)} ready, {len(failed)} failed")
    rows: list[tuple[str, Derived | str]] = [*sorted(done.items()), *failed]

    def as_json(row: tuple[str, Derived | str]) -> dict[str, Any]:
        ref, r = row
        if isinstance(r, str):
            return _failure_or_dict(row)
        return {"reference": ref, "action": "built" if r.built else "present", **as_dict(r)}

    emit(rows, json_out, table,
         lambda row: None if isinstance(row[1], str) else (
             row[0], row[1].image, "built" if row[1].built else "present",
             f"{row[1].seconds:.1f}"),
         as_json)
    for ref, why in failed:
        err_console.print(f"[red]failed[/] {ref}: {why}", soft_wrap=True, markup=False)
    if output is not None:
        mapping = {ref: r.image for ref, r in done.items()}
        mapping.update({image_rules.local_name(ref): r.image for ref, r in done.items()})
        _write_back(tasks, output, image_rules, mapping, None, notes(json_out))
    if failed:
        raise typer.Exit(1)


@app.command("prune")
def prune(backend: str = BACKEND,
          keep_free: str = typer.Option(..., "--keep-free", help="Free space to reach on the "
                                        "engine's data root, e.g. 50G."),
          dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would go."),
          json_out: bool = JSON_LINES) -> None:
    """Remove least recently used images that swebox loaded, pulled or built, and that no
    container uses, until --keep-free is free. Nothing else is ever removed.

    With --json: a line per image {id, names, size, removed} (removed: false on a dry run);
    the free-space summary goes to stderr."""
    from swebox.images.budget import human, parse_size
    from swebox.images.budget import prune as run_prune
    from swebox.sandbox.models import make_config

    make_config(image="-", backend=backend)
    report = run_prune(backend, parse_size(keep_free), dry_run=dry_run)  # type: ignore[arg-type]
    if report.data_root == "None":
        err_console.print(f"cannot see {backend}'s data root from this machine: nothing done")
        raise typer.Exit(4)
    table = Table("image", "names", "size", title=("would remove" if dry_run else "removed"))
    emit(report.removed, json_out, table,
         lambda r: (r.id[:19], ", ".join(r.names), human(r.size)),
         lambda r: {**as_dict(r), "removed": not dry_run})
    notes(json_out).print(f"{report.data_root}: {human(report.free_before)} free before, "
                          f"{human(report.free_after)} after; target {human(report.target)}; "
                          f"{report.kept_in_use} in use and kept")
    if report.free_after < report.target and not dry_run:
        err_console.print("still short: the remaining images are in use or not swebox's")
        raise typer.Exit(7)


@app.command("push")
def push(tasks: Path = TASKS, rules: Path = RULES, backend: str = BACKEND,
         endpoint: str = ENDPOINT,
         to: str = typer.Option(None, "--to", help="Object-store prefix, e.g. s3://bucket/images"
                                " (objects named <repository>-<tag>.tar); default: the rules' "
                                "store templates.")) -> None:
    """Save each task image (streamed) into object storage under the naming convention."""
    from swebox.errors import BadInput
    from swebox.images.reference import ImageRef
    from swebox.images.supply import push as push_one
    from swebox.tasks.resolver import load_rules

    image_rules = load_rules(rules)
    for ref in _images(tasks):
        if to:
            parsed = ImageRef.parse(ref)
            uri = f"{to.rstrip('/')}/{parsed.repository}-{parsed.tag or 'latest'}.tar"
        else:
            uri = image_rules.store_path(ref) or ""
            if not uri:
                raise BadInput(f"no object path for {ref}", hint="pass --to or a rules file "
                               "with a store template")
        size = push_one(image_rules.local_name(ref) if _local_only(ref, image_rules, backend)
                        else ref, uri, backend=backend, endpoint=endpoint)  # type: ignore[arg-type]
        out_console.print(f"pushed {ref} -> {uri} ({size / 2**20:.1f} MiB)")


def _local_only(ref: str, rules: object, backend: str) -> bool:
    """Whether only the short local name is present (the long one was dropped)."""
    from docker.errors import ImageNotFound

    from swebox.sandbox.engine import connect

    api = connect(backend).api  # type: ignore[arg-type]
    try:
        api.inspect_image(ref)
        return False
    except ImageNotFound:
        return True
