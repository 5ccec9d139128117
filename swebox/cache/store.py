"""The repo cache on disk: content-addressed objects, one read-only tree per entry, an index.

    <cache>/index.json          instance_id -> Entry (instance_id, repo, image, commit, path,
                                file_count, size); replaced atomically after each entry
    <cache>/objects/ab/cdef..   file contents by sha256 ("-x" suffix: executable), read-only
    <cache>/trees/<id>.json     the entry's listing: path, kind, mode, size, digest or target
    <cache>/entries/<id>/       the entry as a directory tree of hardlinks into objects/
    <cache>/tmp/                staging; whatever a killed build left here is swept away

Identical files across entries (10 commits of one repository share most of theirs) are stored
once: the entry trees are hardlinks, so `du` on the cache counts each content once. An entry
appears (its tree renamed into entries/, then the index replaced) only when it is complete, so
an interrupted build loses nothing already indexed and, objects being named by content, never
stores anything twice.

Entry trees are read-only views: work in a checkout (`swebox.cache.checkout`, which uses this
store; the store knows nothing of workspaces), which gives each workspace its own
writable copy by the cheapest safe means (reflink, an overlay mount, hardlinks guarded by file
modes, or a plain copy); a write in a workspace never reaches the store.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from swebox.atomic import atomic_path, file_lock
from swebox.errors import BadInput, SweboxError
from swebox.tasks.io import dumps, loads

CHUNK = 1 << 20


class Entry(BaseModel):
    instance_id: str
    repo: str = ""
    image: str = ""
    commit: str = ""
    path: str  # the entry's read-only tree
    file_count: int = 0
    size: int = 0  # logical bytes of its regular files


class Stats(BaseModel):
    entries: int
    files: int
    logical_bytes: int
    stored_bytes: int
    objects: int


def _safe_id(instance_id: str) -> str:
    if not instance_id or "/" in instance_id or instance_id in (".", "..") or "\0" in instance_id:
        raise BadInput(f"instance id {instance_id!r} cannot name a cache entry",
                       hint="ids must not contain '/'")
    return instance_id


class RepoCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()
        self.objects = self.root / "objects"
        self.trees = self.root / "trees"
        self.entries_dir = self.root / "entries"
        self.tmp = self.root / "tmp"
        self.index_path = self.root / "index.json"

    # -- index ---------------------------------------------------------------------------------
    def index(self) -> dict[str, Entry]:
        if not self.index_path.exists():
            return {}
        try:
            data = loads(self.index_path.read_bytes())
        except ValueError as e:
            raise SweboxError(f"{self.index_path} is not valid JSON: {e}",
                              hint="restore it from trees/ with `swebox cache build` "
                              "(existing entries are re-indexed, not re-extracted)") from e
        return {k: Entry.model_validate(v) for k, v in data.items()}

    def get(self, instance_id: str) -> Entry:
        entry = self.index().get(instance_id)
        if entry is None:
            raise BadInput(f"{instance_id} is not in the cache at {self.root}",
                           hint="build it with `swebox cache build`")
        return entry

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Index updates from threads and processes, one at a time."""
        with file_lock(self.root / ".lock"):
            yield

    def _write_index(self, entries: dict[str, Entry]) -> None:
        with atomic_path(self.index_path) as tmp:
            tmp.write_text(dumps({k: v.model_dump() for k, v in sorted(entries.items())}))

    def add_to_index(self, entry: Entry) -> None:
        with self._locked():
            entries = self.index()
            entries[entry.instance_id] = entry
            self._write_index(entries)

    def reindex(self) -> int:
        """Index entries whose tree is complete but which the index lacks (after a crash
        between the tree's rename and the index write). Returns how many were added."""
        with self._locked():
            entries = self.index()
            added = 0
            for listing in sorted(self.trees.glob("*.json")) if self.trees.exists() else []:
                meta = loads(listing.read_bytes()).get("entry")
                if meta and meta["instance_id"] not in entries and \
                        (self.entries_dir / meta["instance_id"]).is_dir():
                    entries[meta["instance_id"]] = Entry.model_validate(meta)
                    added += 1
            if added:
                self._write_index(entries)
            return added

    def sweep(self) -> None:
        """Remove what interrupted builds left in tmp/ (only from dead builds: by pid)."""
        if not self.tmp.exists():
            return
        for item in self.tmp.iterdir():
            pid = item.name.split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            if pid.isdigit() and int(pid) == os.getpid():
                continue
            rmtree(item)

    def staging(self) -> Path:
        """A fresh staging directory, named by this process so a sweep can tell it apart."""
        path = self.tmp / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    # -- ingest --------------------------------------------------------------------------------
    def ingest(self, src: Path, entry: Entry) -> Entry:
        """Move the tree at `src` (on the cache's filesystem) into the store as `entry`.

        Files become objects (linked, not copied, when new), the entry's tree is built of
        hardlinks in staging and renamed into place, then the index is updated."""
        iid = _safe_id(entry.instance_id)
        stage = self.staging()
        tree_dir = stage / "tree"
        tree_dir.mkdir()
        listing: list[list[Any]] = []
        files = size = 0
        for rel, st in _walk(src):
            path = src / rel
            out = tree_dir / rel
            if stat.S_ISDIR(st.st_mode):
                out.mkdir()
                listing.append([rel, "d", st.st_mode & 0o7777, 0, ""])
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                os.symlink(target, out)
                listing.append([rel, "l", 0o777, 0, target])
            elif stat.S_ISREG(st.st_mode):
                digest = self._store(path, st)
                self._link(digest, out)
                listing.append([rel, "f", st.st_mode & 0o777, st.st_size, digest])
                files += 1
                size += st.st_size
            # sockets, fifos and devices have no place in a repository: left out
        for rel, kind, mode, _, _ in reversed(listing):  # directory modes once filled
            if kind == "d":
                os.chmod(tree_dir / rel, mode | 0o700)
        entry = entry.model_copy(update={"path": str(self.entries_dir / iid),
                                         "file_count": files, "size": size})
        self.trees.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.trees / f"{iid}.json") as tmp:
            tmp.write_text(dumps({"entry": entry.model_dump(), "files": listing}))
        self.entries_dir.mkdir(parents=True, exist_ok=True)
        final = self.entries_dir / iid
        if final.exists():  # a stale tree of an entry being rebuilt
            rmtree(final)
        os.rename(tree_dir, final)
        rmtree(stage)
        self.add_to_index(entry)
        return entry

    def object_path(self, digest: str) -> Path:
        return self.objects / digest[:2] / digest[2:]

    def _store(self, path: Path, st: os.stat_result) -> str:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                h.update(block)
        executable = bool(st.st_mode & 0o111)
        digest = h.hexdigest() + ("-x" if executable else "")
        obj = self.object_path(digest)
        if not obj.exists():
            obj.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o555 if executable else 0o444)
            # link(2), not rename: it never replaces an object another thread just stored
            # and is linking from (a replaced inode drops to no links, and linking to it
            # then fails with ENOENT). The staging name goes when the staging dir does.
            with contextlib.suppress(FileExistsError):
                os.link(path, obj)
        return digest

    def _link(self, digest: str, out: Path) -> None:
        obj = self.object_path(digest)
        try:
            os.link(obj, out)
        except OSError as e:
            if e.errno != errno.EMLINK:  # a very common file (ext4 caps links at 65,000)
                raise
            shutil.copyfile(obj, out)
            os.chmod(out, obj.stat().st_mode & 0o777)

    # -- reading -------------------------------------------------------------------------------
    def listing(self, instance_id: str) -> list[list[Any]]:
        path = self.trees / f"{_safe_id(instance_id)}.json"
        if not path.exists():
            raise BadInput(f"{instance_id} is not in the cache at {self.root}",
                           hint="build it with `swebox cache build`")
        return list(loads(path.read_bytes())["files"])

    def stats(self) -> Stats:
        entries = self.index()
        stored = objects = 0
        if self.objects.exists():
            for sub in self.objects.iterdir():
                for obj in sub.iterdir():
                    stored += obj.lstat().st_size
                    objects += 1
        return Stats(entries=len(entries), files=sum(e.file_count for e in entries.values()),
                     logical_bytes=sum(e.size for e in entries.values()), stored_bytes=stored,
                     objects=objects)


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every path under `root` (relative, parents first), never following symlinks."""
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as it:
            for item in sorted(it, key=lambda e: e.name):
                sub = f"{rel}/{item.name}" if rel else item.name
                st = item.stat(follow_symlinks=False)
                yield sub, st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(sub)


def rmtree(path: Path) -> None:
    """rm -rf that also handles read-only directories (entry trees restore modes)."""
    def fix(func: Any, p: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=fix)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
