"""Applying an image's layers to a directory, base first, as overlayfs would show them.

Whiteouts (`.wh.<name>`) remove what lower layers put at `<name>`; an opaque marker
(`.wh..wh..opq`) hides everything lower layers put in its directory; a layer's own entries
survive its own whiteouts, whatever their order in the tar. Devices and fifos are skipped and
counted (we never mknod); xattrs are not applied; symlink targets are written verbatim.

Nothing is written, linked or removed outside `dest`. Names are normalised lexically (a
leading `/` is dropped; a `..` that climbs above the root is `CorruptData` naming the layer
and entry). Paths are walked one component at a time from a directory fd with
`O_DIRECTORY|O_NOFOLLOW`, and the last component is created with `O_EXCL`, mkdirat, symlinkat
or linkat after removing what was there, so the kernel never follows a planted symlink.

Symlinked parents (policy): a symlink met on the way to an entry, a hardlink target or a
whiteout is resolved *inside the rootfs* (chroot semantics, as umoci's securejoin, containerd
and Docker's chrooted untar do): `..` stops at the root, an absolute target restarts at `dest`.
So `link -> /etc` then `link/passwd` writes `dest/etc/passwd`, and `link -> ../../..` then
`link/x` writes `dest/x`. More than 40 symlinks in one walk is `CorruptData`.

`subtree="/testbed"` writes only what is under /testbed, at the root of `dest`; whiteouts and
opaque markers on /testbed or its ancestors still apply. An entry whose parent symlink leads
out of the subtree is skipped (`skipped_outside`); symlinks elsewhere that lead into the
subtree are not followed. A hardlink from the subtree to a file outside it gets the file's
content by a second read of that layer; otherwise every layer is streamed once (`r|`).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from swebox.errors import BadInput, CorruptData, DiskFull
from swebox.oci.image import Descriptor, ImageSource
from swebox.oci.layers import VerifyingReader, open_layer

__all__ = ["ExtractReport", "extract", "extract_to"]

Rel = tuple[str, ...]  # a path as components, relative to the image root

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_HOPS = 40  # symlinks followed in one walk, as Linux's MAXSYMLINKS
_CHUNK = 1 << 20
_FD_CACHE = 128
_OPAQUE = ".wh..wh..opq"
_WH = ".wh."
_HINT = "the image is damaged or hostile; nothing outside the destination was touched"

# Relation of an entry's path to the subtree being extracted.
_UNDER, _SELF, _ABOVE, _OUTSIDE = range(4)


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


def _split(name: str) -> Rel | None:
    """Lexically normalised components of a tar name; None if `..` climbs above the root."""
    out: list[str] = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if not out:
                return None
            out.pop()
        else:
            out.append(c)
    return tuple(out)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove_at(dir_fd: int, name: str, *, force: bool = False) -> int | None:
    """Remove `name` in `dir_fd` and, for a directory, everything in it, never following
    symlinks. Iterative, so depth is not limited by recursion. `force` makes directories
    writable first (for trees whose final modes were already applied). Returns the file type
    (`stat.S_IFMT`) of what went, None if nothing was there."""
    st = _lstat(dir_fd, name)
    if st is None:
        return None
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return stat.S_IFMT(st.st_mode)
    top = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    # stack of (fd, parent fd, name in parent, names left to visit)
    stack: list[tuple[int, int, str, list[str]]] = []
    try:
        if force:
            os.fchmod(top, 0o700)
        stack.append((top, dir_fd, name, os.listdir(top)))
        while stack:
            fd, parent, dname, names = stack[-1]
            if not names:
                stack.pop()
                os.close(fd)
                os.rmdir(dname, dir_fd=parent)
                continue
            child = names.pop()
            cst = _lstat(fd, child)
            if cst is None:
                continue
            if stat.S_ISDIR(cst.st_mode):
                cfd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                try:
                    if force:
                        os.fchmod(cfd, 0o700)
                    stack.append((cfd, fd, child, os.listdir(cfd)))
                except BaseException:
                    os.close(cfd)
                    raise
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        for fd, *_ in stack:
            os.close(fd)
    return stat.S_IFDIR


class _TailKeeper(io.RawIOBase):
    """Passes a stream through, counting bytes and keeping the last ones read.

    Python's tarfile ends an archive silently at a damaged header (`r|` mode), so after the
    tar ends we check that everything from its end offset on is zero padding; the bytes
    tarfile had already buffered are still here to check."""

    _KEEP = 256 << 10

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner
        self.pos = 0
        self._tail: deque[bytes] = deque()
        self._tail_len = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self._inner.read(len(view))
        if not data:
            return 0
        n = len(data)
        view[:n] = data
        self.pos += n
        self._tail.append(data)
        self._tail_len += n
        while self._tail_len - len(self._tail[0]) >= self._KEEP:
            self._tail_len -= len(self._tail.popleft())
        return n

    def rest_is_zero(self, offset: int) -> bool:
        """Whether every byte from `offset` to the end of the stream is zero."""
        start = self.pos - self._tail_len
        if offset < start:
            return False  # cannot happen with tarfile's 10 KiB records; refuse rather than guess
        kept = b"".join(self._tail)[offset - start :]
        if kept.count(0) != len(kept):
            return False
        while True:
            chunk = self._inner.read(_CHUNK)
            if not chunk:
                return True
            if chunk.count(0) != len(chunk):
                return False


class _Extractor:
    """The state of one extraction: the fd of `dest`, recorded directory modes (applied at the
    end), a small cache of opened directories, and what the current layer has written."""

    def __init__(self, source: ImageSource, root_fd: int, prefix: Rel, owner: bool) -> None:
        self.source = source
        self.root_fd = root_fd
        self.prefix = prefix
        self.owner = owner
        self.report = ExtractReport()
        self.dir_meta: dict[Rel, _Meta] = {}
        self.cache: dict[Rel, tuple[int, Rel]] = {}
        self.blocked: dict[Rel, bool] = {}  # subtree or ancestors replaced by a non-directory
        self.seen_subtree = not prefix
        self.where = ""
        self.entry = ""
        # Per layer: what this layer wrote (and their parents), for opaque dirs and whiteouts.
        self.created: set[Rel] = set()
        self.outside_links: dict[Rel, Rel] = {}  # hardlinks outside the subtree → targets
        self.pending: dict[Rel, list[Rel]] = {}  # outside target → placeholders to fill

    # --- messages -------------------------------------------------------------------------

    def fail(self, what: str) -> CorruptData:
        entry = f" entry {self.entry[:200]!r}" if self.entry else ""
        return CorruptData(f"{self.where}{entry}: {what}", hint=_HINT)

    # --- path walking ---------------------------------------------------------------------

    def close(self) -> None:
        self.invalidate()

    def invalidate(self) -> None:
        for fd, _ in self.cache.values():
            os.close(fd)
        self.cache.clear()

    def relation(self, lex: Rel) -> int:
        p = self.prefix
        n = len(p)
        if len(lex) > n and lex[:n] == p:
            return _UNDER
        if lex == p:
            return _SELF
        if lex == p[: len(lex)]:
            return _ABOVE
        return _OUTSIDE

    def mark(self, path: Rel) -> None:
        """Record `path` (and so its parents) as written by the current layer."""
        for k in range(len(path), 0, -1):
            key = path[:k]
            if key in self.created:
                return
            self.created.add(key)

    def open_dir(self, lex: Rel, create: bool) -> tuple[int, Rel] | None:
        """A new fd for the directory at `lex` (under or at the subtree), and its canonical
        path. Symlinks on the way are resolved inside the rootfs (see the module docstring);
        missing directories are created (0755) when `create`. None if it does not exist
        (and not `create`) or if a symlink leads out of the subtree."""
        hit = self.cache.get(lex)
        if hit is not None:
            return os.dup(hit[0]), hit[1]
        p = self.prefix
        todo = list(reversed(lex))
        cur: list[str] = []
        fds: list[int] = []  # fds[i] is the directory cur[len(p) + i]
        hops = 0
        try:
            while todo:
                c = todo.pop()
                if c in ("", "."):
                    continue
                if c == "..":  # only from a symlink target: names were normalised
                    if cur:
                        if len(cur) > len(p):
                            os.close(fds.pop())
                        cur.pop()
                    continue
                depth = len(cur)
                if depth < len(p):
                    if c != p[depth]:
                        return None
                    cur.append(c)
                    continue
                parent = fds[-1] if fds else self.root_fd
                try:
                    fd = os.open(c, _DIR_FLAGS, dir_fd=parent)
                except FileNotFoundError:
                    if not create:
                        return None
                    os.mkdir(c, 0o755, dir_fd=parent)
                    fd = os.open(c, _DIR_FLAGS, dir_fd=parent)
                    os.fchmod(fd, 0o755)  # whatever the umask
                    self.mark((*cur, c))
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = _lstat(parent, c)
                    if st is None or not stat.S_ISLNK(st.st_mode):
                        raise self.fail(f"parent {'/'.join((*cur, c))} is not a directory"
                                        ) from None
                    hops += 1
                    if hops > _MAX_HOPS:
                        raise self.fail("too many levels of symbolic links") from None
                    target = os.readlink(c, dir_fd=parent)
                    if target.startswith("/"):
                        while fds:
                            os.close(fds.pop())
                        cur.clear()
                    todo.extend(reversed(target.split("/")))
                    continue
                fds.append(fd)
                cur.append(c)
            if len(cur) < len(p):
                return None
            fd = fds.pop() if fds else os.dup(self.root_fd)
        finally:
            for fd_ in fds:
                os.close(fd_)
        canon = tuple(cur)
        if len(self.cache) >= _FD_CACHE:
            old = next(iter(self.cache))
            os.close(self.cache.pop(old)[0])
        self.cache[lex] = (os.dup(fd), canon)
        return fd, canon

    def open_canonical(self, path: Rel) -> int | None:
        """An fd for the real directory at canonical `path`; None if something else is there."""
        fd = os.dup(self.root_fd)
        try:
            for c in path[len(self.prefix) :]:
                nfd = os.open(c, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise
        return fd

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

    def clean_opaque(self, fd: int, canon: Rel) -> None:
        """Remove what lower layers put under the directory `fd` (owned; closed here): every
        descendant the current layer did not write."""
        stack = [(fd, canon)]
        removed: set[Rel] = set()
        try:
            while stack:
                dfd, dpath = stack.pop()
                try:
                    for name in os.listdir(dfd):
                        child = (*dpath, name)
                        if child not in self.created:
                            if _remove_at(dfd, name) in (stat.S_IFDIR, stat.S_IFLNK):
                                self.invalidate()
                            removed.add(child)
                            continue
                        st = _lstat(dfd, name)
                        if st is not None and stat.S_ISDIR(st.st_mode):
                            stack.append((os.open(name, _DIR_FLAGS, dir_fd=dfd), child))
                finally:
                    os.close(dfd)
        finally:
            for dfd, _ in stack:
                os.close(dfd)
        if removed:
            self.forget(removed)

    def lower_gone(self, top: Rel) -> None:
        """Everything lower layers put at or under `top`, the subtree or one of its
        ancestors, is gone: empty `dest` of what this layer did not write."""
        for key in list(self.blocked):
            if key[: len(top)] == top and key not in self.created:
                del self.blocked[key]
        self.clean_opaque(os.dup(self.root_fd), self.prefix)

    # --- one layer ------------------------------------------------------------------------

    def members(self, desc: Descriptor, diff_id: str | None
                ) -> Generator[tuple[tarfile.TarFile, tarfile.TarInfo], None, None]:
        """The layer's tar entries, streamed; digests are checked when the stream ends."""
        blob = self.source.open_blob(desc)
        stream: IO[bytes] = blob
        try:
            stream = open_layer(blob, self.where)
            if diff_id is not None and diff_id != desc.digest:
                # Also check the uncompressed bytes against the config's rootfs.diff_ids.
                stream = io.BufferedReader(
                    VerifyingReader(stream, diff_id, f"{self.where} (uncompressed)"))
            keeper = _TailKeeper(stream)
            try:
                with tarfile.open(fileobj=keeper, mode="r|", encoding="utf-8",
                                  errors="surrogateescape") as tar:
                    while True:
                        self.entry = ""
                        member = tar.next()
                        if member is None:
                            break
                        tar.members.clear()  # type: ignore[attr-defined]  # else r| keeps every header
                        self.entry = member.name
                        yield tar, member
                    self.entry = ""
                    if not keeper.rest_is_zero(tar.offset):
                        raise self.fail("damaged tar header or data after the end of the "
                                        f"archive (offset {tar.offset})")
            except tarfile.TarError as e:
                raise self.fail(f"broken tar stream: {e}") from e
            while blob.read(_CHUNK):  # reach EOF so the blob's digest is checked
                pass
        finally:
            stream.close()
            blob.close()

    def apply(self, desc: Descriptor, diff_id: str | None) -> None:
        self.created = set()
        self.outside_links = {}
        self.pending = {}
        try:
            with contextlib.closing(self.members(desc, diff_id)) as entries:
                for tar, member in entries:
                    self.apply_entry(tar, member)
            if any(self.pending.values()):
                self.fill_pending(desc, diff_id)
        except tarfile.TarError as e:  # raised while reading an entry's data
            raise self.fail(f"broken tar stream: {e}") from e
        except CorruptData as e:
            if self.where in e.message:
                raise
            # From the source's digest check: say which layer it was.
            raise CorruptData(f"{self.where}: {e.message}", hint=e.hint) from e

    def apply_entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        lex = _split(m.name)
        if lex is None:
            raise self.fail("path climbs out of the root with '..'")
        base = lex[-1] if lex else ""
        if base.startswith(_WH):
            self.whiteout(lex)
            return
        rel = self.relation(lex)
        if rel == _OUTSIDE:
            if m.islnk():
                target = _split(m.linkname)
                if target is None:
                    raise self.fail("hardlink target climbs out of the root with '..'")
                self.outside_links[lex] = target
            return
        if rel != _UNDER:  # the subtree itself (the root when there is none) or an ancestor
            self.seen_subtree = self.seen_subtree or rel == _SELF
            self.mark(lex)
            if m.isdir():
                self.blocked.pop(lex, None)
                if rel == _SELF:
                    self.dir_meta[lex] = self.meta(m)
            elif not lex:
                raise self.fail("the root is not a directory")
            else:
                # The subtree's root (or an ancestor) became a non-directory: its lower
                # content is gone and nothing under it can be written until that changes.
                self.lower_gone(lex)
                self.blocked[lex] = True
            return
        self.seen_subtree = True
        if any(self.blocked.values()):
            self.report.skipped_outside += 1
            return
        if m.isdev():  # character, block devices and fifos
            self.report.skipped_devices += 1
        elif not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            raise self.fail(f"unsupported tar entry type {m.type!r}")
        opened = self.open_dir(lex[:-1], create=True)
        if opened is None:
            self.report.skipped_outside += 1
            return
        pfd, pcanon = opened
        try:
            self.write(tar, m, pfd, lex[-1], (*pcanon, lex[-1]))
        finally:
            os.close(pfd)

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

    def fill_pending(self, desc: Descriptor, diff_id: str | None) -> None:
        want = {t: paths for t, paths in self.pending.items() if paths}
        self.where += " (second read, for hardlinks into the subtree)"
        with contextlib.closing(self.members(desc, diff_id)) as entries:
            for tar, m in entries:
                lex = _split(m.name)
                if lex is None or not m.isreg() or lex not in want:
                    continue
                self.fill(tar, m, want.pop(lex))
        if want:
            missing = "/".join(next(iter(want)))
            raise self.fail(f"hardlink target {missing} is not a file of this layer")

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

    # --- whiteouts ------------------------------------------------------------------------

    def whiteout(self, lex: Rel) -> None:
        base, parent = lex[-1], lex[:-1]
        if base == _OPAQUE:
            self.report.whiteouts += 1
            self.opaque(parent)
            return
        if base.startswith(_WH + _WH):
            return  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content
        name = base[len(_WH) :]
        if name in ("", ".", ".."):
            raise self.fail("malformed whiteout name")
        self.report.whiteouts += 1
        target = (*parent, name)
        rel = self.relation(target)
        if rel == _OUTSIDE or target in self.created:
            return  # a layer's own entries survive its whiteouts
        if rel != _UNDER:
            self.lower_gone(target)
            return
        opened = self.open_dir(parent, create=False)
        if opened is None:
            return  # nothing there to remove
        pfd, pcanon = opened
        try:
            path = (*pcanon, name)
            if path not in self.created:
                self.remove(pfd, name, path)
        finally:
            os.close(pfd)

    def opaque(self, dir_lex: Rel) -> None:
        rel = self.relation(dir_lex)
        if rel == _OUTSIDE:
            return
        if rel == _ABOVE:
            self.lower_gone(dir_lex)
            return
        opened = self.open_dir(dir_lex, create=False)
        if opened is not None:
            self.clean_opaque(*opened)

    # --- the end --------------------------------------------------------------------------

    def finish(self) -> None:
        """Directory modes and times, deepest first: only now, so that read-only directories
        did not block writing into them, and writing did not change their mtimes."""
        self.invalidate()
        for path in sorted(self.dir_meta, key=len, reverse=True):
            fd = self.open_canonical(path)
            if fd is None:
                continue
            try:
                self.set_meta(fd, self.dir_meta[path])
            finally:
                os.close(fd)


def _diff_ids(source: ImageSource, count: int) -> list[str | None]:
    rootfs = source.config().get("rootfs") or {}
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if isinstance(ids, list) and len(ids) == count and all(isinstance(i, str) for i in ids):
        return list(ids)
    return [None] * count


def extract(source: ImageSource, dest: str | Path, subtree: str | None = None, *,
            preserve_owner: bool = False) -> ExtractReport:
    """Apply `source`'s layers to `dest` (created if missing, normally empty), base first.

    `subtree` (`/testbed`) extracts only that directory, at the root of `dest`. Ownership
    is applied only when `preserve_owner` and running as root; otherwise setuid/setgid bits
    are dropped from files (they would apply to whoever extracted them). On error this raises
    (`CorruptData` for a damaged or hostile image, `BadInput` for a subtree the image does not
    have, `DiskFull`) and leaves `dest` partly written. Digests are known only at the end of
    each layer, so a corrupt layer's files may already be in `dest` by then: use `extract_to`
    for all-or-nothing.
    """
    prefix: Rel = ()
    if subtree is not None:
        split = _split(subtree)
        if split is None:
            raise BadInput(f"subtree {subtree!r} climbs out of the root",
                           hint="give an absolute path inside the image, like /testbed")
        prefix = split
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise BadInput(f"cannot use {dest} as the extraction directory: {e.strerror}",
                       hint="give a writable directory path") from e
    owner = preserve_owner and os.geteuid() == 0
    ex = _Extractor(source, root_fd, prefix, owner)
    try:
        layers = source.layers()
        diff_ids = _diff_ids(source, len(layers))
        for i, desc in enumerate(layers):
            ex.where = f"{source.describe()} layer {i} ({desc.digest[:19]})"
            ex.apply(desc, diff_ids[i])
        ex.where, ex.entry = source.describe(), ""
        ex.finish()
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"{dest}: no space left while extracting {source.describe()}",
                           hint="free disk space or extract elsewhere") from e
        raise
    finally:
        ex.close()
        os.close(root_fd)
    if not ex.seen_subtree:
        raise BadInput(f"{source.describe()} has no {subtree}",
                       hint="check the path inside the image (config WorkingDir)")
    return ex.report


def extract_to(source: ImageSource, dest: str | Path, subtree: str | None = None, *,
               preserve_owner: bool = False) -> ExtractReport:
    """`extract` into a temporary directory beside `dest`, renamed onto `dest` only on
    success; on failure the temporary directory is removed and `dest` never appears.

    `dest` must not exist (an empty directory is also accepted)."""
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise BadInput(f"{dest} already exists", hint="remove it or extract elsewhere")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        os.chmod(tmp, 0o755)  # a rootfs default; the image's own root entry overrides it
        report = extract(source, tmp, subtree, preserve_owner=preserve_owner)
        os.rename(tmp, dest)
    except BaseException:
        pfd = os.open(tmp.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _remove_at(pfd, tmp.name, force=True)
        finally:
            os.close(pfd)
        raise
    return report
