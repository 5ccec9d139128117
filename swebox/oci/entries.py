"""Writing one tar entry under `dest`, for the extractor (`swebox.oci.extract`): regular
files, directories (their modes and times recorded, applied at the end), symlinks and hardlinks,
with the entry's metadata; and removal that forgets what was recorded under what it removed.

A hardlink in the subtree to a file outside it gets an empty placeholder now, filled with the
target's content by a second read of the layer (`_Extractor.fill_pending`, then `fill`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from typing import IO

from swebox.oci.safepath import (
    _DIR_FLAGS,
    _FILE_FLAGS,
    _MAX_HOPS,
    _UNDER,
    Rel,
    _lstat,
    _remove_at,
    _SafePaths,
    _split,
)

_CHUNK = 1 << 20


@dataclass
class ExtractReport:
    """What an extraction wrote, by kind. `bytes` counts regular-file content."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    whiteouts: int = 0
    skipped_devices: int = 0
    bytes: int = 0
    skipped_outside: int = 0  # entries under the subtree that a symlink leads out of it


@dataclass
class _Meta:
    mode: int
    mtime: float
    uid: int
    gid: int


class _EntryWriter(_SafePaths):
    """Writing and removing entries, mixed into the extractor (`swebox.oci.extract._Extractor`,
    whose `__init__` sets these attributes)."""

    owner: bool
    report: ExtractReport
    dir_meta: dict[Rel, _Meta]
    outside_links: dict[Rel, Rel]  # hardlinks outside the subtree → targets
    pending: dict[Rel, list[Rel]]  # outside target → placeholders to fill

    # --- removal --------------------------------------------------------------------------

    def remove(self, dir_fd: int, name: str, path: Rel) -> None:
        """Remove `name` (canonical `path`) and forget what we recorded at or under it."""
        kind = _remove_at(dir_fd, name)
        if kind in (stat.S_IFDIR, stat.S_IFLNK):
            self.invalidate()  # cached walks may have gone through it
        if kind == stat.S_IFDIR:
            self.forget({path})
        elif self.pending:
            for paths in self.pending.values():
                with contextlib.suppress(ValueError):
                    paths.remove(path)

    def forget(self, removed: set[Rel]) -> None:
        """Drop directory modes and hardlink placeholders recorded at or under `removed`."""

        def gone(key: Rel) -> bool:
            return any(key[:k] in removed for k in range(1, len(key) + 1))

        for key in [k for k in self.dir_meta if gone(k)]:
            del self.dir_meta[key]
        for paths in self.pending.values():
            paths[:] = [q for q in paths if not gone(q)]

    # --- one entry ------------------------------------------------------------------------

    def meta(self, m: tarfile.TarInfo) -> _Meta:
        mode = m.mode & 0o7777
        if not self.owner and not m.isdir():
            # A setuid or setgid file owned by whoever extracts it means nothing good.
            mode &= ~(stat.S_ISUID | stat.S_ISGID)
        return _Meta(mode, m.mtime, m.uid, m.gid)

    def write(self, tar: tarfile.TarFile, m: tarfile.TarInfo, pfd: int, name: str,
              path: Rel) -> None:
        st = _lstat(pfd, name)
        if m.isdir():
            if st is None or not stat.S_ISDIR(st.st_mode):
                if st is not None:
                    self.remove(pfd, name, path)
                os.mkdir(name, 0o700, dir_fd=pfd)
                fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
                try:
                    os.fchmod(fd, 0o700)  # writable until the end; see finish()
                finally:
                    os.close(fd)
            self.dir_meta[path] = self.meta(m)
            self.mark(path)
            self.report.dirs += 1
            return
        if m.islnk():
            self.hardlink(m, pfd, name, path)
            return
        if st is not None:
            self.remove(pfd, name, path)
        if m.isdev():
            return
        if m.issym():
            if not m.linkname:
                raise self.fail("symlink with an empty target")
            os.symlink(m.linkname, name, dir_fd=pfd)
            if self.owner:
                os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
            with contextlib.suppress(OverflowError, ValueError):
                ns = int(m.mtime * 1e9)
                os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
            self.mark(path)
            self.report.symlinks += 1
            return
        fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=pfd)
        with open(fd, "wb", closefd=True) as out:
            src = tar.extractfile(m)
            if src is not None:
                shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            self.set_meta(fd, self.meta(m))
        self.mark(path)
        self.report.files += 1
        self.report.bytes += m.size

    def set_meta(self, fd: int, meta: _Meta) -> None:
        if self.owner:
            os.fchown(fd, meta.uid, meta.gid)  # before chmod: chown clears setuid bits
        os.fchmod(fd, meta.mode)
        with contextlib.suppress(OverflowError, ValueError):
            ns = int(meta.mtime * 1e9)
            os.utime(fd, ns=(ns, ns))

    # --- hardlinks ------------------------------------------------------------------------

    def hardlink(self, m: tarfile.TarInfo, pfd: int, name: str, path: Rel) -> None:
        target = _split(m.linkname)
        if target is None:
            raise self.fail("hardlink target climbs out of the root with '..'")
        hops = 0
        while self.relation(target) != _UNDER and target in self.outside_links:
            hops += 1  # a link to a link outside the subtree: find the file
            if hops > _MAX_HOPS:
                raise self.fail("hardlink chain too long")
            target = self.outside_links[target]
        if self.relation(target) != _UNDER:
            if not self.prefix:
                raise self.fail("hardlink to the root directory")
            self.link_outside(pfd, name, path, target)
            return
        opened = self.open_dir(target[:-1], create=False)
        if opened is None:
            raise self.fail(f"hardlink target {'/'.join(target)} was not extracted before it")
        tfd, tcanon = opened
        try:
            tname = target[-1]
            tst = _lstat(tfd, tname)
            if tst is None:
                raise self.fail(f"hardlink target {'/'.join(target)} was not extracted "
                                "before it")
            if stat.S_ISDIR(tst.st_mode):
                raise self.fail(f"hardlink target {'/'.join(target)} is a directory")
            if (*tcanon, tname) == path:
                return  # a link to itself: nothing to do
            if _lstat(pfd, name) is not None:
                self.remove(pfd, name, path)
            try:
                os.link(tname, name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:  # removing `path` took the target with it
                raise self.fail(f"hardlink target {'/'.join(target)} is inside the path it "
                                "replaces") from None
        finally:
            os.close(tfd)
        self.mark(path)
        self.report.hardlinks += 1

    def link_outside(self, pfd: int, name: str, path: Rel, target: Rel) -> None:
        """A hardlink in the subtree to a file outside it: an empty placeholder now (linked to
        the first placeholder of the same target, so links between them stay links), filled
        with the target's content by a second read of the layer."""
        if _lstat(pfd, name) is not None:
            self.remove(pfd, name, path)
        group = self.pending.setdefault(target, [])
        for first in group:
            opened = self.open_canonical(first[:-1])
            if opened is None:
                continue
            try:
                if _lstat(opened, first[-1]) is not None:
                    os.link(first[-1], name, src_dir_fd=opened, dst_dir_fd=pfd,
                            follow_symlinks=False)
                    break
            finally:
                os.close(opened)
        else:
            os.close(os.open(name, _FILE_FLAGS, 0o600, dir_fd=pfd))
        group.append(path)
        self.mark(path)
        self.report.hardlinks += 1

    def fill(self, tar: tarfile.TarFile, m: tarfile.TarInfo, paths: list[Rel]) -> None:
        first: tuple[int, int] | None = None  # (st_dev, st_ino) of the placeholder written
        written: Rel | None = None
        meta = self.meta(m)
        for path in paths:
            dfd = self.open_canonical(path[:-1])
            if dfd is None:
                continue
            try:
                st = _lstat(dfd, path[-1])
                if st is None or not stat.S_ISREG(st.st_mode):
                    continue
                if first == (st.st_dev, st.st_ino):
                    continue  # another name of the placeholder already filled
                flags = os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
                fd = os.open(path[-1], flags, dir_fd=dfd)
                with open(fd, "wb", closefd=True) as out:
                    if written is None:
                        src = tar.extractfile(m)
                        if src is not None:
                            shutil.copyfileobj(src, out, _CHUNK)
                        written = path
                    else:
                        self.copy_from(written, out)
                    out.flush()
                    self.set_meta(fd, meta)
                first = first or (st.st_dev, st.st_ino)
                self.report.bytes += m.size
            finally:
                os.close(dfd)

    def copy_from(self, path: Rel, out: IO[bytes]) -> None:
        dfd = self.open_canonical(path[:-1])
        if dfd is None:
            raise self.fail(f"{'/'.join(path)} vanished while copying it")
        try:
            fd = os.open(path[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        finally:
            os.close(dfd)
        with open(fd, "rb", closefd=True) as src:
            shutil.copyfileobj(src, out, _CHUNK)
