"""`swebox cache build`: each task's workdir, extracted once into the repo cache (seed 002).

Where the files come from, per task:
- a container engine that has the image: a created (never started) container's workdir is
  streamed out through the archive API;
- otherwise without any engine: the `docker save` tarball a rewrite rule maps the image to
  (a local file is read in place; an s3:// or http(s):// object is first streamed to a file in
  the cache's staging area, because a docker-archive needs random access), or the image's
  registry over the OCI distribution API, layers streamed and digest-checked.
Either way the workdir is extracted into staging on the cache's filesystem and moved into the
store (see `store.RepoCache.ingest`), so nothing is copied twice. Entries already in the index
are skipped, so an interrupted build resumes where it stopped; a failure is reported with its
reason and never stops the others.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel

from swebox.cache.store import Entry, RepoCache, rmtree
from swebox.errors import EngineUnavailable, SandboxTimeout, SweboxError
from swebox.oci.image import Descriptor, ImageSource
from swebox.sandbox.models import BackendName
from swebox.tasks.model import Task
from swebox.tasks.resolver import ImageRules

Via = Literal["engine", "tarball", "registry"]


class BuildResult(BaseModel):
    instance_id: str
    action: Literal["cached", "present", "failed", "planned"]
    via: str = ""
    seconds: float = 0.0
    files: int = 0
    error: str = ""


class BuildOptions(BaseModel):
    workers: int = 2
    timeout: float | None = None  # per entry
    dry_run: bool = False
    max_entries: int | None = None
    engine: BackendName | Literal["none", "auto"] = "auto"
    endpoint: str | None = None  # S3 endpoint for store tarballs


class _Deadline:
    def __init__(self, seconds: float | None, what: str) -> None:
        self.at = time.monotonic() + seconds if seconds else None
        self.seconds, self.what = seconds, what

    def check(self) -> None:
        if self.at is not None and time.monotonic() > self.at:
            raise SandboxTimeout(f"{self.what}: took longer than {self.seconds:g} s",
                                 hint="raise --timeout; the entry was not cached")


class _TimedReader:
    """A blob stream that gives up at the deadline (checked on every read)."""

    def __init__(self, inner: IO[bytes], deadline: _Deadline) -> None:
        self.inner, self.deadline = inner, deadline

    def read(self, n: int = -1) -> bytes:
        self.deadline.check()
        return self.inner.read(n)

    def readinto(self, b: Any) -> int:
        self.deadline.check()
        return self.inner.readinto(b)  # type: ignore[attr-defined]

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _TimedSource:
    def __init__(self, inner: ImageSource, deadline: _Deadline) -> None:
        self.inner, self.deadline = inner, deadline

    def describe(self) -> str:
        return self.inner.describe()

    def config(self) -> dict[str, Any]:
        return self.inner.config()

    def layers(self) -> list[Descriptor]:
        return self.inner.layers()

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        return _TimedReader(self.inner.open_blob(desc), self.deadline)  # type: ignore[return-value]


def _engine(opts: BuildOptions, image: str) -> tuple[BackendName, str] | None:
    """(engine, the name it stores the image under) for an engine that is reachable and has
    the image; None to go daemonless."""
    if opts.engine == "none":
        return None
    from swebox.sandbox.engine import find_image

    candidates: list[BackendName] = ["docker", "podman"] if opts.engine == "auto" \
        else [opts.engine]
    for backend in candidates:
        try:
            found = find_image(backend, image)
        except EngineUnavailable:
            if opts.engine != "auto":
                raise
            continue
        if found is not None:
            return backend, found[0]
    return None


def _via_engine(backend: BackendName, name: str, workdir: str, dest: Path,
                deadline: _Deadline) -> None:
    from docker.errors import APIError, NotFound

    from swebox.sandbox.engine import connect
    from swebox.sandbox.lifecycle import owner_labels
    from swebox.sandbox.tarstream import extract_stream

    api = connect(backend).api
    # Never started, but labelled like a sandbox: if this process is killed before removing
    # it, `swebox gc` sees its owner is gone and removes it.
    labels = owner_labels("cache", deadline.seconds or 3600, None)
    cid = api.create_container(name, command=["true"], entrypoint=[],
                               network_disabled=True, labels=labels)["Id"]
    try:
        try:
            stream, _ = api.get_archive(cid, workdir)
        except NotFound as e:
            raise SweboxError(f"{name} has no {workdir}",
                              hint="check the task's workdir") from e

        def chunks() -> Iterator[bytes]:
            for chunk in stream:
                deadline.check()
                yield chunk

        extract_stream(chunks(), dest)
    except APIError as e:
        raise SweboxError(f"{backend} could not read {workdir} of {name}: "
                          f"{e.explanation or e}") from e
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(cid, force=True)


def _via_daemonless(task: Task, rules: ImageRules, cache: RepoCache, dest: Path,
                    opts: BuildOptions, deadline: _Deadline) -> Via:
    from swebox.oci.archive import DockerArchive
    from swebox.oci.extract import extract

    image = task.image or ""
    uri = rules.store_path(image)
    download: Path | None = None
    source: Any
    if uri:
        from swebox.images import stores

        if uri.startswith("file://") or "://" not in uri:
            path = Path(uri.removeprefix("file://"))
        else:
            download = dest.parent / "image.tar"
            with stores.open_read(uri, endpoint=opts.endpoint) as f, open(download, "wb") as out:
                while block := f.read(1 << 20):
                    deadline.check()
                    out.write(block)
            path = download
        if not path.exists():
            raise SweboxError(f"no tarball for {image} at {uri}",
                              hint="check the rewrite rule's store template")
        source, via = DockerArchive(path, image), "tarball"
    else:
        from swebox.oci.registry import RegistrySource

        source, via = RegistrySource(image), "registry"
    try:
        extract(_TimedSource(source, deadline), dest, task.workdir)
    finally:
        source.close()
        if download is not None:
            download.unlink(missing_ok=True)
    return via  # type: ignore[return-value]


def cache_one(task: Task, cache: RepoCache, rules: ImageRules, opts: BuildOptions) -> BuildResult:
    start = time.monotonic()
    image = task.local_image or task.image
    if not image:
        return BuildResult(instance_id=task.instance_id, action="failed",
                           error="the task names no image")
    deadline = _Deadline(opts.timeout, f"caching {task.instance_id}")
    stage = cache.staging()
    tree = stage / "workdir"
    try:
        engine = _engine(opts, image)
        if engine is not None:
            _via_engine(engine[0], engine[1], task.workdir, tree, deadline)
            via: str = engine[0]
        else:
            via = _via_daemonless(task, rules, cache, tree, opts, deadline)
        deadline.check()
        entry = cache.ingest(tree, Entry(instance_id=task.instance_id, repo=task.repo,
                                         image=task.image or image, commit=task.base_commit,
                                         path=""))
        return BuildResult(instance_id=task.instance_id, action="cached", via=via,
                           files=entry.file_count, seconds=round(time.monotonic() - start, 3))
    except SweboxError as e:
        return BuildResult(instance_id=task.instance_id, action="failed", error=str(e),
                           seconds=round(time.monotonic() - start, 3))
    except OSError as e:
        return BuildResult(instance_id=task.instance_id, action="failed",
                           error=f"{type(e).__name__}: {e}",
                           seconds=round(time.monotonic() - start, 3))
    finally:
        rmtree(stage)


def build_cache(tasks: Iterable[Task], cache: RepoCache, rules: ImageRules | None = None,
                opts: BuildOptions | None = None,
                on_result: Callable[[BuildResult], None] | None = None) -> list[BuildResult]:
    """Cache every task not yet in `cache`; results in completion order."""
    from swebox.jobs import run_all

    opts = opts or BuildOptions()
    rules = rules or ImageRules()
    cache.root.mkdir(parents=True, exist_ok=True)
    cache.sweep()
    cache.reindex()
    have = cache.index()
    todo: list[Task] = []
    results: list[BuildResult] = []
    for task in tasks:
        if opts.max_entries is not None and len(todo) >= opts.max_entries:
            break
        if task.instance_id in have:
            results.append(BuildResult(instance_id=task.instance_id, action="present"))
            continue
        todo.append(task)
    if opts.dry_run:
        return results + [BuildResult(instance_id=t.instance_id, action="planned",
                                      via=t.image or "") for t in todo]

    def one(task: Task) -> BuildResult:
        result = cache_one(task, cache, rules, opts)
        if on_result is not None:
            on_result(result)
        return result

    results.extend(run_all(one, todo, opts.workers))
    return results
