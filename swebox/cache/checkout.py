"""Workspaces: a private, writable copy of a cache entry, by the cheapest safe means.

`checkout` tries, in order: reflink clones (btrfs, XFS), an overlay mount with the entry's
hardlink tree as the read-only lower layer (where mounting is permitted), hardlinks to the
read-only objects (not as root, whom file modes do not stop), and a plain copy. A write in a
workspace never changes the store; `release` removes a workspace, unmounting it first.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from swebox.cache.store import Entry, RepoCache, rmtree
from swebox.errors import BadInput, SweboxError

FICLONE = 0x40049409  # linux/fs.h: clone a whole file's extents (btrfs, xfs, bcachefs)
Mode = Literal["auto", "reflink", "overlay", "hardlink", "copy"]


class Workspace(BaseModel):
    path: str
    mode: Mode
    instance_id: str


def checkout(cache: RepoCache, instance_id: str, dest: str | Path,
             mode: Mode = "auto") -> Workspace:
    """A writable copy of the entry at `dest` (which must not exist or be empty).

    auto tries, in order: reflink (copy-on-write clones, where the filesystem has them),
    an overlay mount with the entry's tree as the read-only lower layer (needs the right
    to mount), hardlinks to the read-only objects (not as root, whom file modes do not
    stop), and a plain copy. A write in a workspace never changes the store."""
    entry = cache.get(instance_id)
    dest = Path(dest).absolute()
    if dest.exists() and any(dest.iterdir()):
        raise BadInput(f"{dest} is not empty", hint="check out into a new directory")
    order: list[Mode] = ["reflink", "overlay", "hardlink", "copy"] if mode == "auto" \
        else [mode]
    last: Exception | None = None
    for m in order:
        if mode == "auto" and not _may(cache, m):
            continue
        try:
            _METHODS[m](cache, entry, dest)
            return Workspace(path=str(dest), mode=m, instance_id=instance_id)
        except (OSError, subprocess.CalledProcessError, SweboxError) as e:
            last = e
            release(dest)
            if mode != "auto":
                raise SweboxError(f"{m} checkout of {instance_id} failed: {e}") from e
            _unusable.add((str(cache.root), m))
    raise SweboxError(f"no checkout method worked for {instance_id}: {last}")

# Methods found not to work for a cache root (no reflink on ext4, no right to mount).
_unusable: set[tuple[str, str]] = set()

def _may(cache: RepoCache, mode: Mode) -> bool:
    if (str(cache.root), mode) in _unusable:
        return False
    if mode == "hardlink":
        return os.geteuid() != 0
    return True

def _materialize(cache: RepoCache, entry: Entry, dest: Path, put: Any) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    listing = cache.listing(entry.instance_id)
    for rel, kind, mode, _, ref in listing:
        out = dest / rel
        if kind == "d":
            out.mkdir()
        elif kind == "l":
            os.symlink(ref, out)
        else:
            put(cache.object_path(ref), out, mode)
    for rel, kind, mode, _, _ in reversed(listing):
        if kind == "d":
            os.chmod(dest / rel, mode | 0o700)

def _checkout_reflink(cache: RepoCache, entry: Entry, dest: Path) -> None:
    def clone(src: Path, out: Path, mode: int) -> None:
        fd_in = os.open(src, os.O_RDONLY)
        try:
            fd_out = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode | 0o200)
            try:
                fcntl.ioctl(fd_out, FICLONE, fd_in)
            finally:
                os.close(fd_out)
        finally:
            os.close(fd_in)
    _materialize(cache, entry, dest, clone)

def _checkout_hardlink(cache: RepoCache, entry: Entry, dest: Path) -> None:
    if os.geteuid() == 0:
        raise SweboxError("hardlink checkouts rely on read-only file modes, which do not "
                          "stop root", hint="use overlay or copy")
    _materialize(cache, entry, dest, lambda src, out, mode: os.link(src, out))

def _checkout_copy(cache: RepoCache, entry: Entry, dest: Path) -> None:
    def copy(src: Path, out: Path, mode: int) -> None:
        shutil.copyfile(src, out)
        os.chmod(out, mode | 0o200)
    _materialize(cache, entry, dest, copy)

def _checkout_overlay(cache: RepoCache, entry: Entry, dest: Path) -> None:
    side = _side(dest)
    (side / "upper").mkdir(parents=True, exist_ok=True)
    (side / "work").mkdir(exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    opts = (f"lowerdir={_escape(entry.path)},upperdir={_escape(str(side / 'upper'))},"
            f"workdir={_escape(str(side / 'work'))}")
    _mount_overlay(opts, dest)


def _libc() -> Any:
    import ctypes
    import ctypes.util

    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _mount_overlay(opts: str, dest: Path) -> None:
    """mount(2) itself: a checkout is a single syscall, where `mount` would add a fork+exec
    that costs more than the mount."""
    import ctypes

    if _libc().mount(b"overlay", os.fsencode(dest), b"overlay", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"overlay mount on {dest}: {os.strerror(err)}")


def _unmount(dest: Path) -> None:
    if _libc().umount2(os.fsencode(dest), 2) != 0:  # MNT_DETACH: a busy workspace goes too
        subprocess.run(["umount", "-l", str(dest)], check=False, capture_output=True,
                       timeout=30)


def release(dest: str | Path) -> None:
    """Remove a workspace, unmounting it first if it is an overlay."""
    dest = Path(dest).absolute()
    if os.path.ismount(dest):
        _unmount(dest)
    side = _side(dest)
    if side.exists():
        rmtree(side)
    if dest.exists() and not os.path.ismount(dest):
        rmtree(dest)


def _side(dest: Path) -> Path:
    """Where an overlay workspace keeps its upper and work dirs: beside it, hidden."""
    return dest.parent / f".{dest.name}.swebox-overlay"


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


_METHODS = {"reflink": _checkout_reflink, "overlay": _checkout_overlay,
            "hardlink": _checkout_hardlink, "copy": _checkout_copy}
