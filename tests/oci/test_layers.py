"""Compression sniffing and digest-checking readers."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from swebox.errors import CorruptData
from swebox.oci.layers import VerifyingReader, open_layer
from tests.oci.builders import compress, file, sha256, tar_bytes


class Pipe(io.RawIOBase):
    """A forward-only stream that hands out at most 1000 bytes per read, like a socket."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(b), 1000))
        b[: len(chunk)] = chunk
        return len(chunk)


RAW = tar_bytes([file("a", os.urandom(30_000)), file("b", "b" * 100_000)])


@pytest.mark.parametrize("how", ["none", "gzip", "zstd", "xz", "bzip2"])
def test_open_layer_decompresses_without_seeking(how: str) -> None:
    stream = open_layer(io.BufferedReader(Pipe(compress(RAW, how))))
    assert stream.read() == RAW


def test_open_layer_concatenated_gzip_members() -> None:
    half = len(RAW) // 2
    blob = compress(RAW[:half], "gzip") + compress(RAW[half:], "gzip")
    assert open_layer(io.BytesIO(blob)).read() == RAW


def test_open_layer_empty_blob_is_an_empty_tar() -> None:
    assert open_layer(io.BytesIO(b"")).read() == bytes(1024)


def test_open_layer_rejects_unknown_magic() -> None:
    with pytest.raises(CorruptData, match=r"layer x: not a tar, gzip or zstd stream \(starts "
                                          r"with 504b0304"):
        open_layer(io.BytesIO(b"PK\x03\x04" + bytes(1000)), "layer x")
    with pytest.raises(CorruptData, match="not a tar"):
        open_layer(io.BytesIO(b"short"))


def test_open_layer_broken_stream() -> None:
    blob = bytearray(compress(RAW, "gzip"))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(CorruptData, match="broken gzip stream"):
        open_layer(io.BytesIO(bytes(blob)), "L").read()


def test_open_layer_closes_the_blob() -> None:
    raw = io.BytesIO(compress(RAW, "zstd"))
    open_layer(raw).close()
    assert raw.closed


def test_verifying_reader_passes_good_bytes() -> None:
    r = VerifyingReader(io.BufferedReader(Pipe(RAW)), sha256(RAW), "blob", size=len(RAW))
    assert io.BufferedReader(r).read() == RAW
    assert r.verified


def test_verifying_reader_mismatch_at_eof() -> None:
    bad = bytearray(RAW)
    bad[10] ^= 1
    r = VerifyingReader(io.BytesIO(bytes(bad)), sha256(RAW), "layer 3")
    assert r.read(100)  # nothing is said before the end
    got = "sha256:" + hashlib.sha256(bytes(bad)).hexdigest()
    with pytest.raises(CorruptData, match=f"layer 3: digest mismatch, expected {sha256(RAW)}, "
                                          f"got {got}"):
        r.read()


def test_verifying_reader_size() -> None:
    with pytest.raises(CorruptData, match="longer than the 10 bytes"):
        VerifyingReader(io.BytesIO(RAW), sha256(RAW), "b", size=10).read()
    with pytest.raises(CorruptData, match="expected 99999999"):
        VerifyingReader(io.BytesIO(RAW), sha256(RAW), "b", size=99999999).read()


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "md5:abc", "sha256:ABC",
                                    "nocolon"])
def test_verifying_reader_malformed_digest(digest: str) -> None:
    with pytest.raises(CorruptData, match="malformed digest"):
        VerifyingReader(io.BytesIO(b""), digest, "b")
