"""Tar streams between the host and a sandbox, with flat memory and safe extraction.

Uploads are produced by a thread writing a tar into a pipe that the HTTP client streams from;
downloads are read in tarfile's streaming mode (`r|`) straight from the engine's response.
Extraction never writes outside the destination: absolute paths, `..`, links pointing out and
device nodes are refused.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath

from swebox.errors import BadInput, SandboxError

CHUNK = 1024 * 1024


def single_file_tar(name: str, data: bytes, mode: int = 0o644) -> bytes:
    """A tar holding one regular file (used for small writes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name.lstrip("/"))
        info.size = len(data)
        info.mode = mode
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def produced_tar(write: Callable[[tarfile.TarFile], None], what: str,
                 thread_name: str = "swebox-tar") -> Iterator[bytes]:
    """Chunks of a streamed tar that `write` fills in a producer thread, through a pipe, so
    memory stays flat however big the tree. An error in `write` is raised to the consumer as
    SandboxError("`what` failed: ...")."""
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            with os.fdopen(write_fd, "wb") as w, tarfile.open(fileobj=w, mode="w|") as tar:
                write(tar)
        except BaseException as e:  # surfaced to the consumer below
            errors.append(e)

    thread = threading.Thread(target=produce, name=thread_name, daemon=True)
    thread.start()
    with os.fdopen(read_fd, "rb") as r:
        while chunk := r.read(CHUNK):
            yield chunk
    thread.join()
    if errors and not isinstance(errors[0], BrokenPipeError):
        raise SandboxError(f"{what} failed: {errors[0]}")


def tar_stream(src: Path, arcname: str) -> Iterator[bytes]:
    """Stream a tar of `src` (file or directory) with its top entry named `arcname`."""
    if not src.exists():
        raise BadInput(f"cannot upload {src}: no such file or directory")
    return produced_tar(
        lambda tar: tar.add(str(src), arcname=arcname.lstrip("/"), recursive=True),
        f"reading {src} for upload", "swebox-tar-upload")


class IterReader(io.RawIOBase):
    """A read-only file object over an iterable of byte chunks (an HTTP response body)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def read_member(chunks: Iterable[bytes], path: str) -> bytes:
    """The content of the first regular file in a tar stream (a `get_archive` of one file)."""
    with tarfile.open(fileobj=io.BufferedReader(IterReader(chunks), CHUNK), mode="r|") as tar:
        for member in tar:
            if member.isfile():
                f = tar.extractfile(member)
                return f.read() if f else b""
            if member.isdir():
                raise SandboxError(f"{path} is a directory, not a file", hint="use download()")
    raise SandboxError(f"{path} is not a regular file")


def _safe_target(dest: Path, rel: PurePosixPath) -> Path:
    if rel.is_absolute() or ".." in rel.parts:
        raise SandboxError(f"refusing unsafe path {str(rel)!r} in archive")
    target = dest.joinpath(*rel.parts) if rel.parts else dest
    return target


def extract_stream(chunks: Iterable[bytes], dest: Path) -> int:
    """Extract a `get_archive` stream into `dest`, dropping the archive's top-level entry name.

    The top entry becomes `dest` itself (a file, or a directory holding the tree). Returns the
    number of entries written.
    """
    count = 0
    dest = dest.absolute()
    root: str | None = None
    with tarfile.open(fileobj=io.BufferedReader(IterReader(chunks), CHUNK), mode="r|") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if root is None:
                root = parts[0] if parts else ""
            if not parts or parts[0] != root:
                raise SandboxError(f"unexpected entry {member.name!r} in archive")
            target = _safe_target(dest, PurePosixPath(*parts[1:]) if len(parts) > 1 else
                                  PurePosixPath())
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, (member.mode & 0o7777) | 0o700)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if target.is_symlink():
                    target.unlink()
                with open(target, "wb") as out:
                    while src is not None and (block := src.read(CHUNK)):
                        out.write(block)
                os.chmod(target, member.mode & 0o777)
            elif member.issym():
                link = PurePosixPath(member.linkname)
                resolved = PurePosixPath(*parts[1:-1], *link.parts) if not link.is_absolute() \
                    else link
                if link.is_absolute() or ".." in PurePosixPath(
                    os.path.normpath(str(resolved))).parts:
                    raise SandboxError(f"refusing symlink {member.name!r} -> {member.linkname!r}"
                                       " that points outside the download")
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists() or target.is_symlink():
                    target.unlink()
                os.symlink(member.linkname, target)
            elif member.islnk():
                link_parts = PurePosixPath(member.linkname).parts
                if not link_parts or link_parts[0] != root:
                    raise SandboxError(f"refusing hardlink {member.name!r} to outside")
                source = _safe_target(dest, PurePosixPath(*link_parts[1:]))
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    target.unlink()
                os.link(source, target)
            else:
                continue  # device nodes, fifos: never created on the host
            count += 1
    return count
