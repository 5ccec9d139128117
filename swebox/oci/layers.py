"""Layer streams: compression sniffed from magic bytes, and digest-checking readers.

`open_layer` turns a blob's stored bytes (plain tar, gzip, zstd; xz and bzip2 too, which old
Docker still accepts) into a stream of the uncompressed tar without needing to seek.
`VerifyingReader` hashes bytes as they pass and raises `CorruptData` at end of stream when they
do not match the promised digest; every image source wraps its blobs in one.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import re
import zlib
from typing import IO, Any

import zstandard
from isal import igzip

from swebox.errors import CorruptData

__all__ = ["VerifyingReader", "check_digest", "open_layer"]

_DIGEST_RE = {"sha256": re.compile(r"[0-9a-f]{64}"), "sha512": re.compile(r"[0-9a-f]{128}")}
_HEAD = 512  # one tar header block: enough to recognise every format we read
_CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"


def check_digest(digest: str, what: str) -> tuple[str, str]:
    """Split `sha256:<hex>` into (algorithm, hex); anything else is `CorruptData`.

    Digests name files in OCI layouts, so a malformed one (`sha256:../../x`) must never reach
    a path join."""
    alg, sep, hexd = digest.partition(":")
    pattern = _DIGEST_RE.get(alg)
    if not sep or pattern is None or not pattern.fullmatch(hexd):
        raise CorruptData(f"{what}: unsupported or malformed digest {digest[:90]!r}",
                          hint="expected sha256:<64 hex digits> or sha512:<128 hex digits>")
    return alg, hexd


def _read_into(raw: IO[bytes], b: memoryview) -> int:
    """Fill `b` from `raw` with one read call; 0 means end of stream."""
    readinto = getattr(raw, "readinto", None)
    if readinto is not None:
        n = readinto(b)
        return int(n or 0)
    data = raw.read(len(b))
    if not data:
        return 0
    b[: len(data)] = data
    return len(data)


class VerifyingReader(io.RawIOBase):
    """A readable that hashes what passes through and checks it at end of stream.

    Raises `CorruptData("<what>: digest mismatch, expected sha256:…, got sha256:…")` on the
    read that reaches EOF when the bytes do not match, and also when more or fewer bytes than
    `size` (if given, >= 0) come through. Nothing is trusted before that read: consumers that
    stop early (a tar reader at its end-of-archive marker) must drain the stream to EOF.
    """

    def __init__(self, raw: IO[bytes], digest: str, what: str, *, size: int = -1) -> None:
        super().__init__()
        alg, self._expected = check_digest(digest, what)
        self._alg = alg
        self._hash = hashlib.new(alg)
        self._raw = raw
        self._what = what
        self._size = size
        self._count = 0
        self.verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.verified:
            return 0
        view = memoryview(b).cast("B")
        if not len(view):
            return 0
        n = _read_into(self._raw, view)
        if n == 0:
            self._finish()
            return 0
        self._hash.update(view[:n])
        self._count += n
        if 0 <= self._size < self._count:
            raise CorruptData(f"{self._what}: longer than the {self._size} bytes promised",
                              hint="the blob is damaged or not the one referenced; fetch it again")
        return n

    def _finish(self) -> None:
        if 0 <= self._size != self._count:
            raise CorruptData(f"{self._what}: {self._count} bytes, expected {self._size}",
                              hint="the blob is truncated or damaged; fetch it again")
        got = self._hash.hexdigest()
        if got != self._expected:
            raise CorruptData(f"{self._what}: digest mismatch, expected {self._alg}:"
                              f"{self._expected}, got {self._alg}:{got}",
                              hint="the blob is damaged or altered; fetch it again")
        self.verified = True

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


class _Prefixed(io.RawIOBase):
    """The bytes already peeked at, then the rest of the stream: a one-shot "unread"."""

    def __init__(self, head: bytes, raw: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._pos = 0
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self._pos < len(self._head):
            n = min(len(view), len(self._head) - self._pos)
            view[:n] = self._head[self._pos : self._pos + n]
            self._pos += n
            return n
        return _read_into(self._raw, view)

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


# What a damaged compressed stream raises, by library; translated to CorruptData. A failure
# of the underlying file (EIO) is an OSError too, but the decompressors do not raise plain
# OSError themselves, so only their own kinds are caught.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError, igzip.BadGzipFile,
)


class _Guarded(io.RawIOBase):
    """A decompressing stream whose decoding errors become `CorruptData` naming the blob."""

    def __init__(self, inner: Any, src: IO[bytes], what: str, kind: str) -> None:
        super().__init__()
        self._inner = inner
        self._src = src  # gzip, xz and bzip2 readers leave the file they were given open
        self._what = what
        self._kind = kind

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        try:
            return _read_into(self._inner, view)
        except _DECODE_ERRORS as e:
            raise CorruptData(f"{self._what}: broken {self._kind} stream: {e}",
                              hint="the blob is damaged; fetch it again") from e
        except OSError as e:
            if self._kind == "bzip2" and not e.errno:  # bz2 reports bad data as a bare OSError
                raise CorruptData(f"{self._what}: broken {self._kind} stream: {e}",
                                  hint="the blob is damaged; fetch it again") from e
            raise

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
                self._src.close()
            finally:
                super().close()


def _looks_like_tar(head: bytes) -> bool:
    if len(head) < _HEAD:
        return False
    if head[257:262] == b"ustar":  # POSIX ustar and GNU ("ustar  \0")
        return True
    if head == bytes(_HEAD):  # an end-of-archive block: an empty tar
        return True
    # A pre-POSIX (v7) header: no magic, but its checksum field must add up.
    try:
        stored = int(head[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(head[:148]) + 8 * 32 + sum(head[156:])


def _peek(raw: IO[bytes], n: int) -> bytes:
    parts: list[bytes] = []
    have = 0
    while have < n:
        chunk = raw.read(n - have)
        if not chunk:
            break
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def open_layer(raw: IO[bytes], what: str = "layer") -> IO[bytes]:
    """The uncompressed tar stream of a layer blob, whatever its compression.

    Reads only forwards; closing the result closes `raw`. An empty blob reads as an empty tar
    (Docker accepts those). Anything that is not tar, gzip, zstd, xz or bzip2 raises
    `CorruptData`; so does a damaged compressed stream, when it is read. (zstandard's reader
    does not report a truncated last frame: the digest check and the tar structure catch it.)
    """
    head = _peek(raw, _HEAD)
    if not head:
        raw.close()
        return io.BufferedReader(_Prefixed(bytes(2 * _HEAD), io.BytesIO()))
    src = io.BufferedReader(_Prefixed(head, raw), buffer_size=_CHUNK)
    inner: Any
    if head.startswith(GZIP_MAGIC):
        kind, inner = "gzip", igzip.IGzipFile(fileobj=src, mode="rb")
    elif head.startswith(ZSTD_MAGIC):
        # read_across_frames: layers written by parallel compressors hold several frames.
        kind = "zstd"
        inner = zstandard.ZstdDecompressor().stream_reader(
            src, read_size=_CHUNK, read_across_frames=True, closefd=True)
    elif head.startswith(XZ_MAGIC):
        kind, inner = "xz", lzma.LZMAFile(src, mode="rb")  # noqa: SIM115 (returned open)
    elif head.startswith(BZIP2_MAGIC):
        kind, inner = "bzip2", bz2.BZ2File(src, mode="rb")
    elif _looks_like_tar(head):
        return src
    else:
        src.close()
        raise CorruptData(f"{what}: not a tar, gzip or zstd stream (starts with "
                          f"{head[:8].hex()})", hint="the blob is damaged or not a layer")
    return io.BufferedReader(_Guarded(inner, src, what, kind), buffer_size=_CHUNK)
