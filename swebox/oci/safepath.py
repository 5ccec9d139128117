"""Path safety for layer extraction (`swebox.oci.extract`): tar names normalised lexically,
paths walked one component at a time from directory fds opened `O_DIRECTORY|O_NOFOLLOW`,
symlinked parents resolved inside the rootfs (chroot-style), and removal that never follows a
symlink. The rules themselves are stated in `swebox.oci.extract`'s docstring.
"""

from __future__ import annotations

import errno
import os
import stat

from swebox.errors import CorruptData

Rel = tuple[str, ...]  # a path as components, relative to the image root

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_HOPS = 40  # symlinks followed in one walk, as Linux's MAXSYMLINKS
_FD_CACHE = 128
_HINT = "the image is damaged or hostile; nothing outside the destination was touched"

# Relation of an entry's path to the subtree being extracted.
_UNDER, _SELF, _ABOVE, _OUTSIDE = range(4)


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


class _SafePaths:
    """Walking paths under `dest`, mixed into the extractor (`swebox.oci.extract._Extractor`,
    whose `__init__` sets these attributes)."""

    root_fd: int
    prefix: Rel
    cache: dict[Rel, tuple[int, Rel]]
    created: set[Rel]
    where: str
    entry: str

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
        path. Symlinks on the way are resolved inside the rootfs (see `swebox.oci.extract`);
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
