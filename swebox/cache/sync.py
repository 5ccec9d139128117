"""`swebox cache sync`: copy a repo cache to or from another directory or an object store.

Replaces seed 002's `rsync`/`tar czf` step. A remote copy has the same layout minus the
hardlink trees (`index.json`, `trees/<id>.json`, `objects/aa/<rest>`), which are cheap to
rebuild from the listings on arrival. Objects are named by content, so a copy is resumed by
skipping what the other side has; downloaded objects are checked against their names.

- push (local -> s3://, file://, or a plain path): objects first, then listings, and the
  index last (merged with what the remote already indexes), so a reader of the remote never
  sees an entry whose files are not all there;
- pull (s3://, file://, http(s)://, or a plain path -> local): entry by entry: its missing
  objects, then its tree, then the index; an interrupted pull keeps every finished entry.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from swebox.cache.store import Entry, RepoCache, rmtree
from swebox.errors import BadInput, CorruptData
from swebox.images import stores
from swebox.tasks.io import dumps, loads

_DIGEST = re.compile(r"^[0-9a-f]{64}(-x)?$")


class SyncReport(BaseModel):
    direction: str
    entries: int = 0  # entries copied
    skipped_entries: int = 0  # already there
    objects: int = 0  # objects copied
    skipped_objects: int = 0
    bytes: int = 0


def _is_remote(where: str) -> bool:
    return "://" in where and not where.startswith("file://")


def _join(prefix: str, rel: str) -> str:
    return f"{prefix.rstrip('/')}/{rel}"


def sync(src: str, dst: str, *, endpoint: str | None = None,
         on_entry: Callable[[str], None] | None = None) -> SyncReport:
    """Copy the cache at `src` to `dst`; one side must be a local directory (a RepoCache).

    A local cache has `entries/`; a pushed copy (even in a plain directory) has not, so a
    directory source with `entries/` is pushed from, any other source is pulled from."""
    for where in (src, dst):
        scheme = where.split("://", 1)[0].lower() if "://" in where else "file"
        if scheme not in ("s3", "file", "http", "https"):
            raise BadInput(f"unknown scheme {scheme!r} in {where}",
                           hint="use a directory, s3://bucket/prefix, file:// or https://")
    if not _is_remote(src) and Path(src.removeprefix("file://")).is_dir() and \
            (Path(src.removeprefix("file://")) / "entries").is_dir():
        local = RepoCache(src.removeprefix("file://"))
        remote = dst if "://" in dst else f"file://{Path(dst).absolute()}"
        return push(local, remote, endpoint=endpoint, on_entry=on_entry)
    if _is_remote(dst):
        raise BadInput(f"cannot sync {src} to {dst}: one side must be a local cache directory",
                       hint="sync through a local directory")
    source = src if "://" in src else f"file://{Path(src).absolute()}"
    return pull(source, RepoCache(dst.removeprefix("file://")), endpoint=endpoint,
                on_entry=on_entry)


def push(cache: RepoCache, remote: str, *, endpoint: str | None = None,
         on_entry: Callable[[str], None] | None = None) -> SyncReport:
    report = SyncReport(direction="push")
    entries = cache.index()
    if not entries:
        raise BadInput(f"{cache.root} holds no cache entries", hint="build it first")
    have = set(stores.list_keys(_join(remote, "objects"), endpoint=endpoint))
    for obj_dir in sorted(cache.objects.iterdir()):
        for obj in sorted(obj_dir.iterdir()):
            rel = f"{obj_dir.name}/{obj.name}"
            if rel in have:
                report.skipped_objects += 1
                continue
            with open(obj, "rb") as f:
                report.bytes += stores.upload(_join(remote, f"objects/{rel}"), f,
                                              endpoint=endpoint)
            report.objects += 1
    trees = set(stores.list_keys(_join(remote, "trees"), endpoint=endpoint))
    for iid in sorted(entries):
        if f"{iid}.json" in trees:
            report.skipped_entries += 1
            continue
        with open(cache.trees / f"{iid}.json", "rb") as f:
            stores.upload(_join(remote, f"trees/{iid}.json"), f, endpoint=endpoint)
        report.entries += 1
        if on_entry is not None:
            on_entry(iid)
    merged = {k: v.model_dump() for k, v in _remote_index(remote, endpoint).items()}
    merged.update({k: v.model_dump() for k, v in entries.items()})
    stores.upload(_join(remote, "index.json"), [dumps(merged).encode()], endpoint=endpoint)
    return report


def _remote_index(remote: str, endpoint: str | None) -> dict[str, Entry]:
    try:
        with stores.open_read(_join(remote, "index.json"), endpoint=endpoint) as f:
            data = loads(f.read())
    except stores.ObjectNotFound:
        return {}
    return {k: Entry.model_validate(v) for k, v in data.items()}


def pull(remote: str, cache: RepoCache, *, endpoint: str | None = None,
         on_entry: Callable[[str], None] | None = None) -> SyncReport:
    report = SyncReport(direction="pull")
    index = _remote_index(remote, endpoint)
    if not index:
        raise BadInput(f"no cache at {remote} (no index.json)",
                       hint="push one there first with `swebox cache sync DIR REMOTE`")
    cache.root.mkdir(parents=True, exist_ok=True)
    cache.sweep()
    have = cache.index()
    seen: set[str] = set()  # objects counted already (copied or found) in this pull
    for iid, entry in sorted(index.items()):
        if iid in have:
            report.skipped_entries += 1
            continue
        with stores.open_read(_join(remote, f"trees/{iid}.json"), endpoint=endpoint) as f:
            raw = f.read()
        listing = loads(raw)["files"]
        stage = cache.staging()
        try:
            for _, kind, _, _, digest in listing:
                if kind == "f" and not _DIGEST.match(str(digest)):
                    raise CorruptData(f"listing of {iid} names a bad object {digest!r}")
                if kind != "f" or digest in seen:
                    continue
                seen.add(digest)
                if cache.object_path(digest).exists():
                    report.skipped_objects += 1
                    continue
                report.bytes += _fetch_object(remote, digest, cache, stage, endpoint)
                report.objects += 1
            cache.trees.mkdir(parents=True, exist_ok=True)
            (stage / "listing.json").write_bytes(raw)
            _plant(cache, iid, listing, stage)
            entry = entry.model_copy(update={"path": str(cache.entries_dir / iid)})
            data = loads(raw)
            data["entry"] = entry.model_dump()
            (stage / "listing.json").write_text(dumps(data))
            os.replace(stage / "listing.json", cache.trees / f"{iid}.json")
            final = cache.entries_dir / iid
            if final.exists():
                rmtree(final)
            cache.entries_dir.mkdir(parents=True, exist_ok=True)
            os.rename(stage / "tree", final)
            cache.add_to_index(entry)
        finally:
            rmtree(stage)
        report.entries += 1
        if on_entry is not None:
            on_entry(iid)
    return report


def _fetch_object(remote: str, digest: str, cache: RepoCache, stage: Path,
                  endpoint: str | None) -> int:
    rel = f"{digest[:2]}/{digest[2:]}"
    tmp = stage / f"obj-{digest[:16]}"
    h = hashlib.sha256()
    size = 0
    with stores.open_read(_join(remote, f"objects/{rel}"), endpoint=endpoint) as f, \
            open(tmp, "wb") as out:
        while block := f.read(1 << 20):
            h.update(block)
            out.write(block)
            size += len(block)
    if h.hexdigest() != digest.removesuffix("-x"):
        raise CorruptData(f"object {rel} from {remote} does not match its name",
                          hint="the remote copy is damaged: push it again from a good cache")
    obj = cache.object_path(digest)
    obj.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o555 if digest.endswith("-x") else 0o444)
    os.replace(tmp, obj)
    return size


def _plant(cache: RepoCache, iid: str, listing: list[list[object]], stage: Path) -> None:
    """The entry's hardlink tree, built in staging from its listing."""
    tree = stage / "tree"
    tree.mkdir()
    real = os.path.realpath(tree)
    for rel, kind, _mode, _, ref in listing:
        out = tree / str(rel)
        # Lexically inside, and no parent is a symlink planted by an earlier line.
        if ".." in Path(str(rel)).parts or Path(str(rel)).is_absolute() or \
                os.path.realpath(out.parent) != os.path.join(real, os.path.dirname(str(rel))
                                                             ).rstrip("/"):
            raise CorruptData(f"listing of {iid} has a path leaving its tree: {rel!r}",
                              hint="the remote copy is damaged or hostile: nothing was kept")
        if kind == "f" and not _DIGEST.match(str(ref)):
            raise CorruptData(f"listing of {iid} names a bad object {ref!r}")
        if kind == "d":
            out.mkdir()
        elif kind == "l":
            os.symlink(str(ref), out)
        else:
            cache._link(str(ref), out)
    for rel, kind, mode, _, _ in reversed(listing):
        if kind == "d":
            os.chmod(tree / str(rel), int(mode) | 0o700)  # type: ignore[call-overload]


