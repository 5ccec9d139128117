"""The disk budget: room is made before an image is loaded, never by `system prune -af`.

Before a load, pull or build, the free space on the engine's data root is compared with the
bytes the image will need plus `keep_free`. When that is short, images that swebox itself put
into the engine (see `ledger`) are removed least recently used first, skipping any that a
container (running or stopped) still uses and any the caller protects, until the need is met.
If it cannot be met, `DiskFull` says how much is missing before a single byte is loaded.

Concurrent loads in one process reserve their need while they run, so two 40 GB loads never
both count on the same 50 GB; across processes a lock file serialises the decisions.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from docker.errors import APIError, NotFound
from pydantic import BaseModel

from swebox.atomic import file_lock
from swebox.errors import BadInput, DiskFull
from swebox.images import ledger
from swebox.sandbox.engine import connect, engine_url
from swebox.sandbox.models import BackendName

log = logging.getLogger(__name__)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
          "p": 1 << 50}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_lock = threading.Lock()
_reserved: dict[str, int] = {}


def parse_size(text: str | int) -> int:
    """`50G`, `1.5T`, `500MiB`, `0` -> bytes (binary units, as `df -h` shows them)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(text)
    if not m:
        raise BadInput(f"not a size: {text!r}", hint="write e.g. 50G, 512M or 0")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


class Removed(BaseModel):
    id: str
    names: list[str]
    size: int


class PruneReport(BaseModel):
    data_root: str
    free_before: int
    free_after: int
    target: int
    removed: list[Removed] = []
    kept_in_use: int = 0


def data_root(backend: BackendName) -> Path | None:
    """Where the engine keeps images, if that directory is visible from here."""
    info = connect(backend).api.info()
    root = info.get("DockerRootDir") or (info.get("Store") or {}).get("GraphRoot")
    if not root or not Path(root).exists():
        return None
    return Path(root)


def free_bytes(backend: BackendName) -> tuple[Path | None, int]:
    root = data_root(backend)
    return root, (shutil.disk_usage(root).free if root else -1)


@contextmanager
def _exclusive() -> Iterator[None]:
    """One process at a time decides what to remove (and threads within it)."""
    with _lock, file_lock(ledger.state_dir() / "budget.lock"):
        yield


def _in_use(backend: BackendName) -> set[str]:
    api = connect(backend).api
    return {c.get("ImageID", "") for c in api.containers(all=True)} - {""}


def _remove(backend: BackendName, entry: ledger.Entry) -> bool:
    """Untag the names that still point at the image, then remove it; False if it stays."""
    api = connect(backend).api
    for name in entry.names:
        try:
            if api.inspect_image(name)["Id"] == entry.id:
                api.remove_image(name)
        except (NotFound, APIError):
            continue
    try:
        api.remove_image(entry.id)
    except NotFound:
        pass  # the last untag removed it
    except APIError as e:
        log.info("kept %s: %s", entry.id[:19], e)
        return False
    ledger.forget(engine_url(backend), entry.id)
    return True


def _make_room(backend: BackendName, target: int, protect: set[str],
               dry_run: bool = False) -> PruneReport:
    """Remove LRU swebox images until free space (minus reservations) reaches `target`."""
    root, free = free_bytes(backend)
    engine = engine_url(backend)
    report = PruneReport(data_root=str(root), free_before=free, free_after=free, target=target)
    if root is None:
        return report
    available = free - _reserved.get(engine, 0)
    if available >= target:
        return report
    busy = _in_use(backend)
    api = connect(backend).api
    for entry in ledger.entries(engine):
        if available >= target:
            break
        try:
            present = api.inspect_image(entry.id)
        except NotFound:
            ledger.forget(engine, entry.id)  # removed behind our back: nothing to gain
            continue
        if entry.id in busy or protect & {entry.id, *entry.names}:
            report.kept_in_use += 1
            continue
        size = int(present.get("Size") or entry.size)
        if dry_run or _remove(backend, entry):
            report.removed.append(Removed(id=entry.id, names=entry.names, size=size))
            # Engines free layers lazily and shared layers not at all, so count what the
            # image said it held rather than re-reading the disk after each removal.
            available += size
    report.free_after = shutil.disk_usage(root).free
    return report


def prune(backend: BackendName, keep_free: int, *, dry_run: bool = False,
          protect: Iterable[str] = ()) -> PruneReport:
    """`swebox images prune --keep-free`: make `keep_free` bytes free, LRU swebox images first."""
    with _exclusive():
        return _make_room(backend, keep_free, set(protect), dry_run=dry_run)


@contextmanager
def room(backend: BackendName, need: int, keep_free: int, *, what: str,
         protect: Iterable[str] = ()) -> Iterator[PruneReport]:
    """Hold `need` bytes (plus `keep_free`) on the data root for the duration of a load.

    Raises DiskFull, before anything is loaded, when pruning cannot make enough room."""
    engine = engine_url(backend)
    with _exclusive():
        report = _make_room(backend, need + keep_free, set(protect))
        if report.data_root == "None":
            log.warning("cannot see %s's data root from here: disk budget not checked", backend)
        else:
            available = (shutil.disk_usage(report.data_root).free
                         - _reserved.get(engine, 0))
            if available < need + keep_free:
                raise DiskFull(
                    f"too little disk for {what} on {report.data_root}: needs {human(need)} "
                    f"+ {human(keep_free)} kept free, {human(max(available, 0))} available "
                    f"after removing {len(report.removed)} swebox image(s)",
                    hint="free space, lower --keep-free, or run `swebox images prune`")
        _reserved[engine] = _reserved.get(engine, 0) + need
    try:
        yield report
    finally:
        with _lock:
            _reserved[engine] -= need
