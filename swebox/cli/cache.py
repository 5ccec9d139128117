"""`swebox cache build|stats|checkout|release|sync`: the repo cache (seed 002)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from swebox.cli import err_console, out_console
from swebox.cli.render import JSON_LINES, as_dict, emit, json_line

app = typer.Typer(help="Extract task workdirs once; check them out fast; sync caches.",
                  no_args_is_help=True)

CACHE_DIR = typer.Option(..., "--cache-dir", "-c", help="The cache directory.")


@app.command("build")
def build(tasks: Path = typer.Option(None, "--tasks", "-t", help="Task file."),
          hf: str = typer.Option(None, "--hf", help="A Hugging Face dataset instead."),
          split: str = typer.Option("train", "--split", help="Dataset split (with --hf)."),
          cache_dir: Path = CACHE_DIR,
          rules: Path = typer.Option(None, "--rules", help="Image rules TOML (rewrite rules "
                                     "map images to object-store tarballs)."),
          max_entries: int = typer.Option(None, "--max-entries", min=1,
                                          help="Cache at most this many new entries."),
          dry_run: bool = typer.Option(False, "--dry-run", help="List what would be cached."),
          workers: int = typer.Option(2, "--workers", "-j", min=1),
          timeout: float = typer.Option(None, "--timeout", min=1,
                                        help="Seconds allowed per entry."),
          engine: str = typer.Option("auto", "--engine", help="auto (an engine that has the "
                                     "image, else daemonless), docker, podman, or none."),
          endpoint: str = typer.Option(None, "--endpoint", help="S3 endpoint URL."),
          json_out: bool = JSON_LINES) -> None:
    """Extract each task's workdir into the cache; resumes, skipping cached entries.

    With --json: a line per task {instance_id, action, via, seconds, files, error}, action
    one of cached, present, failed, planned (a dry run)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from swebox.cache.build import BuildOptions, BuildResult, build_cache
    from swebox.cache.store import RepoCache
    from swebox.errors import BadInput
    from swebox.tasks.convert import open_source
    from swebox.tasks.model import Task
    from swebox.tasks.resolver import load_rules

    if engine not in ("auto", "docker", "podman", "none"):
        raise BadInput(f"unknown --engine {engine!r}", hint="use auto, docker, podman or none")
    image_rules = load_rules(rules)
    items = [t for t in open_source(tasks, hf=hf, split=split, rules=image_rules)
             if isinstance(t, Task)]
    opts = BuildOptions(workers=workers, timeout=timeout, dry_run=dry_run,
                        max_entries=max_entries, engine=engine,  # type: ignore[arg-type]
                        endpoint=endpoint)
    cache = RepoCache(cache_dir)
    progress = Progress(TextColumn("caching"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.description}"), console=err_console, transient=True)
    todo = len(items) - len(set(cache.index()) & {t.instance_id for t in items})
    if max_entries is not None:
        todo = min(todo, max_entries)
    bar = progress.add_task("", total=todo)

    def advance(result: BuildResult) -> None:
        progress.update(bar, advance=1, description=result.instance_id)

    with progress:
        results = build_cache(items, cache, image_rules, opts, on_result=advance)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.action] = counts.get(r.action, 0) + 1
    if dry_run and not json_out:
        for r in results:
            if r.action == "planned":
                out_console.print(f"would cache {r.instance_id} from {r.via}")
    table = Table("instance", "via", "files", "seconds", title=", ".join(
        f"{n} {a}" for a, n in sorted(counts.items())))
    if json_out or not dry_run:
        emit(results, json_out, table,
             lambda r: (r.instance_id, r.via, str(r.files), f"{r.seconds:.1f}")
             if r.action == "cached" else None)
    for r in results:
        if r.action == "failed":
            err_console.print(f"[red]failed[/] {r.instance_id}: {r.error}", soft_wrap=True,
                              markup=False)
    if counts.get("failed"):
        raise typer.Exit(1)


@app.command("stats")
def stats(cache_dir: Path = CACHE_DIR,
          json_out: bool = typer.Option(False, "--json", help="Print one JSON object "
                                        "{entries, files, logical_bytes, stored_bytes, "
                                        "objects}.")) -> None:
    """Entries, files, and logical vs stored bytes (identical files are stored once)."""
    from swebox.cache.store import RepoCache
    from swebox.images.budget import human

    s = RepoCache(cache_dir).stats()
    if json_out:
        json_line(as_dict(s))
        return
    ratio = s.stored_bytes / s.logical_bytes if s.logical_bytes else 0.0
    out_console.print(f"{s.entries} entries, {s.files} files, {s.objects} distinct contents\n"
                      f"logical {human(s.logical_bytes)}, stored {human(s.stored_bytes)} "
                      f"({ratio:.2f} of logical)")


@app.command("checkout")
def checkout(instance_id: str = typer.Argument(...), dest: Path = typer.Argument(...),
             cache_dir: Path = CACHE_DIR,
             mode: str = typer.Option("auto", "--mode", help="auto, reflink, overlay, "
                                      "hardlink or copy.")) -> None:
    """A writable workspace of one entry; `swebox cache release DEST` removes it."""
    from swebox.cache.checkout import checkout as check_out
    from swebox.cache.store import RepoCache
    from swebox.errors import BadInput

    if mode not in ("auto", "reflink", "overlay", "hardlink", "copy"):
        raise BadInput(f"unknown --mode {mode!r}",
                       hint="use auto, reflink, overlay, hardlink or copy")
    ws = check_out(RepoCache(cache_dir), instance_id, dest, mode)  # type: ignore[arg-type]
    out_console.print(f"{ws.path} ({ws.mode})")


@app.command("release")
def release(dest: Path = typer.Argument(...)) -> None:
    """Remove a workspace (unmounting an overlay one)."""
    from swebox.cache.checkout import release as release_ws

    release_ws(dest)


@app.command("sync")
def sync(src: str = typer.Argument(..., help="A cache directory, or s3://, file://, https:// "
                                   "prefix holding a pushed cache."),
         dst: str = typer.Argument(..., help="Where to copy it (one side must be local)."),
         endpoint: str = typer.Option(None, "--endpoint", help="S3 endpoint URL.")) -> None:
    """Copy a cache to or from another directory or an object store; resumable."""
    from swebox.cache.sync import sync as run_sync

    with err_console.status(f"syncing {src} -> {dst}") as status:
        report = run_sync(src, dst, endpoint=endpoint,
                          on_entry=lambda iid: status.update(f"synced {iid}"))
    out_console.print(f"{report.direction}: {report.entries} entries copied "
                      f"({report.skipped_entries} already there), {report.objects} objects "
                      f"({report.skipped_objects} already there), {report.bytes} bytes")
