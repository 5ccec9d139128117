"""Files of a bwrap sandbox, read and written from the host through its root (`fsaccess`):
write_file, read_file, upload, download."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Generator
from pathlib import Path, PurePosixPath

from swebox.errors import BadInput, SandboxError
from swebox.sandbox.bwrap.core import _Core
from swebox.sandbox.bwrap.fsaccess import (
    _copy_fd,
    _mkdirs,
    _open_in,
    _place_file,
    _remove_entry,
    _tar_from,
    _write_all,
)
from swebox.sandbox.tarstream import extract_stream


class _Files(_Core):
    """The sandbox's files, from the host."""

    def _file_error(self, e: OSError, what: str, path: str) -> SandboxError:
        if e.errno == errno.ENOENT:
            return SandboxError(f"no such file in sandbox: {path}")
        if e.errno == errno.ELOOP:
            return SandboxError(f"cannot {what} {path} in {self.name}: too many symlinks")
        return SandboxError(f"cannot {what} {path} in {self.name}: {e.strerror or e}")

    def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        payload = data.encode() if isinstance(data, str) else data
        full = self.abspath(path)
        parent, name = str(PurePosixPath(full).parent), PurePosixPath(full).name
        if not name:
            raise BadInput(f"cannot write {path}: not a file path")
        with self._root() as root:
            try:
                pfd = _mkdirs(root, parent)
                try:
                    _place_file(pfd, name, lambda fd: _write_all(fd, payload), mode)
                finally:
                    os.close(pfd)
            except OSError as e:
                raise self._file_error(e, "write", full) from e

    def read_file(self, path: str) -> bytes:
        full = self.abspath(path)
        with self._root() as root:
            try:
                fd = _open_in(root, full, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as e:
                raise self._file_error(e, "read", full) from e
            with os.fdopen(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if stat.S_ISDIR(st.st_mode):
                    raise SandboxError(f"{full} is a directory, not a file", hint="use download()")
                if not stat.S_ISREG(st.st_mode):
                    raise SandboxError(f"{full} is not a regular file")
                return f.read()

    def upload(self, src: str | Path, dest: str) -> None:
        src = Path(src)
        try:
            top = src.lstat()
        except OSError as e:
            raise BadInput(f"cannot upload {src}: no such file or directory") from e
        full = self.abspath(dest)
        parent, name = str(PurePosixPath(full).parent), PurePosixPath(full).name
        if not name:
            raise BadInput(f"cannot upload to {dest}: give a path below /")
        with self._root() as root:
            try:
                pfd = _mkdirs(root, parent)
                try:
                    self._put(pfd, name, src, top)
                finally:
                    os.close(pfd)
            except OSError as e:
                raise self._file_error(e, "upload to", full) from e

    def _put(self, dir_fd: int, name: str, src: Path, st: os.stat_result) -> None:
        """Copy host `src` to `name` in sandbox directory `dir_fd`, like extracting a tar:
        entries are created, never followed; modes, owners and mtimes kept."""
        owner = (st.st_uid, st.st_gid)
        if stat.S_ISREG(st.st_mode):
            with open(src, "rb") as f:
                _place_file(dir_fd, name, lambda fd: _copy_fd(f.fileno(), fd),
                            stat.S_IMODE(st.st_mode), owner)
        elif stat.S_ISLNK(st.st_mode):
            _remove_entry(dir_fd, name)
            os.symlink(os.readlink(src), name, dir_fd=dir_fd)
            os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)
        elif stat.S_ISDIR(st.st_mode):
            _remove_entry(dir_fd, name)
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=dir_fd)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=dir_fd)
            try:
                with os.scandir(src) as entries:
                    for entry in entries:
                        self._put(sub, entry.name, Path(entry.path),
                                  entry.stat(follow_symlinks=False))
                os.fchown(sub, *owner)
                os.fchmod(sub, stat.S_IMODE(st.st_mode))
            finally:
                os.close(sub)
        else:
            return  # devices, fifos, sockets: never recreated (as `tar_stream` users expect)
        with contextlib.suppress(OSError):
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd,
                     follow_symlinks=False)

    def download(self, src: str, dest: str | Path) -> None:
        full = self.abspath(src)
        with self._root() as root:
            try:
                chunks = _tar_from(root, full, PurePosixPath(full).name or "root")
                first = next(chunks, b"")
            except OSError as e:
                if e.errno == errno.ENOENT:
                    raise SandboxError(f"no such path in sandbox: {full}") from e
                raise self._file_error(e, "download", full) from e

            def stream() -> Generator[bytes, None, None]:
                yield first
                yield from chunks

            gen = stream()
            try:
                extract_stream(gen, Path(dest))
            finally:
                gen.close()
                chunks.close()
