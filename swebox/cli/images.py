"""`swebox images fetch|push`: task images from object-store tarballs or registries, and back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import typer
from rich.table import Table

from swebox.cli import err_console, out_console

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
          drop_long_name: bool = typer.Option(False, "--drop-long-name",
                                              help="Untag the long name after tagging the "
                                              "short one."),
          output: Path = typer.Option(None, "--output", "-o", help="Write the tasks with "
                                      "their local image names here (swebox JSONL).")) -> None:
    """Make every task image present: skip, stream-load from a tarball, or pull."""
    from swebox.errors import SweboxError
    from swebox.images.supply import FetchResult, fetch_image
    from swebox.sandbox.models import make_config
    from swebox.tasks.resolver import load_rules

    make_config(image="-", backend=backend)
    image_rules = load_rules(rules)
    refs = _images(tasks)
    done: list[FetchResult] = []
    failed: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(fetch_image, ref, image_rules, backend=backend,  # type: ignore[arg-type]
                               drop_long_name=drop_long_name, endpoint=endpoint): ref
                   for ref in refs}
        for fut in as_completed(futures):
            try:
                done.append(fut.result())
            except SweboxError as e:
                failed.append((futures[fut], str(e)))
    table = Table("image", "local name", "action", "MiB", "seconds")
    for r in sorted(done, key=lambda r: r.reference):
        table.add_row(r.reference, r.local, r.action, f"{r.bytes / 2**20:.1f}", f"{r.seconds:.1f}")
    out_console.print(table)
    for ref, why in failed:
        err_console.print(f"[red]failed[/] {ref}: {why}", soft_wrap=True, markup=False)
    if output is not None:
        _write_back(tasks, output, image_rules)
    if failed:
        raise typer.Exit(1)


def _write_back(tasks: Path, output: Path, rules: object) -> None:
    from swebox.tasks.convert import convert, open_source

    items = open_source(tasks, rules=rules)  # type: ignore[arg-type]
    report = convert(items, output, "swebox")
    out_console.print(f"wrote {report.written} tasks with local image names to {output}")


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
