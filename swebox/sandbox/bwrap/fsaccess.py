"""Safe file access in a bwrap sandbox's root from the host: openat2(RESOLVE_IN_ROOT) (or a
walk that refuses symlinks), atomic writes, and tar streams of what is inside."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import secrets
import stat
import tarfile
from collections.abc import Callable, Generator
from pathlib import PurePosixPath
from typing import Any

from swebox.sandbox.tarstream import CHUNK, produced_tar

_SYS_OPENAT2 = 437  # the same number on every architecture (new syscalls are unified)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10


# -- safe file access in the sandbox's root ------------------------------------------------------
class _How(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_openat2_ok = True


def _parts(path: str) -> list[str]:
    return [c for c in PurePosixPath(path).parts if c not in ("/", ".")]


def _open_in(root: int, path: str, flags: int) -> int:
    """Open `path` (absolute inside the sandbox) relative to the sandbox's root fd. Symlinks
    resolve inside the sandbox (RESOLVE_IN_ROOT), never to host paths; /proc magic links are
    refused. Without openat2, any symlink on the way is refused instead."""
    global _openat2_ok
    flags |= os.O_CLOEXEC
    rel = "/".join(_parts(path)) or "."
    if _openat2_ok:
        how = _How(flags, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
        for _ in range(20):  # EAGAIN: a rename raced the lookup
            fd = int(_libc.syscall(_SYS_OPENAT2, root, rel.encode(), ctypes.byref(how),
                                   ctypes.sizeof(how)))
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
            if err == errno.ENOSYS:  # a kernel before 5.6: walk without following instead
                _openat2_ok = False
                break
            if err != errno.EAGAIN:
                raise OSError(err, os.strerror(err), path)
        else:
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN), path)
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=root)
    try:
        comps = _parts(path)
        for i, comp in enumerate(comps):
            last = i == len(comps) - 1
            if comp == "..":
                raise OSError(errno.EPERM, "'..' is not allowed", path)
            nxt = os.open(comp, (flags if last else os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                          | os.O_NOFOLLOW, 0o600, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if not comps:
            nxt = os.open(".", flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _mkdirs(root: int, path: str) -> int:
    """An fd of directory `path` in the sandbox, creating what is missing (mode 0755)."""
    dflags = os.O_RDONLY | os.O_DIRECTORY
    try:
        return _open_in(root, path, dflags)
    except FileNotFoundError:
        pass
    fd = _open_in(root, "/", dflags)
    done = ""
    try:
        for comp in _parts(path):
            done += "/" + comp
            try:
                nxt = _open_in(root, done, dflags)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(comp, 0o755, dir_fd=fd)
                nxt = _open_in(root, done, dflags)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _place_file(dir_fd: int, name: str, fill: Callable[[int], None], mode: int,
                owner: tuple[int, int] | None = None) -> None:
    """Create `name` in `dir_fd` atomically: a temporary file, renamed over what was there (a
    file or a symlink is replaced, never followed)."""
    tmp = f".swebox-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        try:
            fill(fd)
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode & 0o7777)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def _remove_entry(dir_fd: int, name: str) -> None:
    """Remove a non-directory entry if there is one."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)


class _Exact(io.RawIOBase):
    """Exactly `size` bytes of an fd: padded with zeros if the file shrank while being read
    (the sandbox may write to it), cut if it grew; a tar member's size must hold."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.left = fd, size

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), self.left)
        if n <= 0:
            return 0
        data = os.read(self.fd, n) or bytes(n)
        b[: len(data)] = data
        self.left -= len(data)
        return len(data)


def _tar_from(root: int, path: str, arcname: str) -> Generator[bytes, None, None]:
    """A tar stream of `path` in the sandbox (top entry `arcname`), walked from directory fds
    with O_NOFOLLOW: links are stored as links, devices and fifos are left out."""
    top = _open_in(root, path, os.O_RDONLY | os.O_NONBLOCK)

    def add(tar: tarfile.TarFile, fd: int, name: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(name)
        info.mode, info.mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
        info.uid, info.gid = st.st_uid, st.st_gid
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
            stack.append((fd, name))
            return
        try:
            if stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                tar.addfile(info, io.BufferedReader(_Exact(fd, st.st_size), CHUNK))
        finally:
            os.close(fd)

    stack: list[tuple[int, str]] = []

    owned = [False]  # whether add() has taken `top` (and will close it)

    def write(tar: tarfile.TarFile) -> None:
        try:
            owned[0] = True
            add(tar, top, arcname, os.fstat(top))
            while stack:
                dfd, dname = stack.pop()
                try:
                    for entry in sorted(os.listdir(dfd)):
                        st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
                        name = f"{dname}/{entry}"
                        if stat.S_ISLNK(st.st_mode):
                            info = tarfile.TarInfo(name)
                            info.type = tarfile.SYMTYPE
                            info.linkname = os.readlink(entry, dir_fd=dfd)
                            info.mode, info.mtime = 0o777, int(st.st_mtime)
                            tar.addfile(info)
                        elif stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                            try:
                                fd = os.open(entry, flags, dir_fd=dfd)
                            except OSError:  # gone, or swapped for a link meanwhile
                                continue
                            add(tar, fd, name, os.fstat(fd))
                finally:
                    os.close(dfd)
        finally:
            for dfd, _ in stack:
                os.close(dfd)

    try:
        yield from produced_tar(write, f"reading {path} in the sandbox", "swebox-bwrap-download")
    finally:
        if not owned[0]:
            os.close(top)


def _norm(path: str) -> str:
    return "/" + "/".join(_parts(path))


def _copy_fd(src: int, dst: int) -> None:
    while True:
        block = os.read(src, CHUNK)
        if not block:
            return
        _write_all(dst, block)
