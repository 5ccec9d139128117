"""Object stores against real servers on 127.0.0.1: moto's S3 server and a static HTTP server."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from swebox.errors import BadInput, ImageNotFound, SweboxError
from swebox.images import stores
from swebox.images.stores import ObjectNotFound, exists, open_read, stat, upload
from tests.images.conftest import HttpDir

MiB = 1 << 20
BIG = 50 * MiB
MEMORY_LIMIT = 16 * MiB
DEAD = "http://127.0.0.1:1"  # nothing listens on port 1: connection refused at once
T = TypeVar("T")


def _chunks(total: int, digest: Any, fail_after: int | None = None) -> Iterator[bytes]:
    """`total` random bytes made on the fly, 1 MiB at a time, hashed into `digest`."""
    sent = 0
    while sent < total:
        if fail_after is not None and sent >= fail_after:
            raise RuntimeError("source broke")
        chunk = os.urandom(min(MiB, total - sent))
        digest.update(chunk)
        sent += len(chunk)
        yield chunk


def _read_all(uri: str, endpoint: str | None = None, size: int = MiB) -> tuple[str, int]:
    digest, count = hashlib.sha256(), 0
    with open_read(uri, endpoint=endpoint) as f:
        while chunk := f.read(size):
            assert len(chunk) <= size
            digest.update(chunk)
            count += len(chunk)
        assert f.read(size) == b""
    return digest.hexdigest(), count


def _peak(fn: Callable[[], T]) -> tuple[T, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(params=["s3", "file"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(a URI prefix, the endpoint) for each writable store."""
    if request.param == "s3":
        bucket = request.getfixturevalue("bucket")
        return f"s3://{bucket}", request.getfixturevalue("s3_endpoint")
    return (tmp_path / "store").as_uri(), None


def test_big_round_trip_streams_in_flat_memory(place: tuple[str, str | None]) -> None:
    prefix, endpoint = place
    uri = f"{prefix}/images/big.tar"
    sent = hashlib.sha256()
    written, up_peak = _peak(lambda: upload(uri, _chunks(BIG, sent), endpoint=endpoint))
    assert written == BIG
    assert stat(uri, endpoint=endpoint).size == BIG
    (digest, count), down_peak = _peak(lambda: _read_all(uri, endpoint))
    assert (digest, count) == (sent.hexdigest(), BIG)
    assert up_peak < MEMORY_LIMIT, f"upload peak {up_peak / MiB:.1f} MiB"
    assert down_peak < MEMORY_LIMIT, f"download peak {down_peak / MiB:.1f} MiB"


def test_upload_from_a_file_and_odd_read_sizes(place: tuple[str, str | None],
                                               tmp_path: Path) -> None:
    prefix, endpoint = place
    data = os.urandom(12 * MiB + 123)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    uri = f"{prefix}/from-file.bin"
    with open(src, "rb") as f:
        assert upload(uri, f, endpoint=endpoint) == len(data)
    assert _read_all(uri, endpoint, size=777_777) == (hashlib.sha256(data).hexdigest(),
                                                      len(data))
    with open_read(uri, endpoint=endpoint) as f:
        assert f.read(10) == data[:10]
        assert f.read(5) == data[10:15]


def test_empty_and_small_objects(place: tuple[str, str | None]) -> None:
    prefix, endpoint = place
    assert upload(f"{prefix}/empty", [], endpoint=endpoint) == 0
    assert stat(f"{prefix}/empty", endpoint=endpoint).size == 0
    with open_read(f"{prefix}/empty", endpoint=endpoint) as f:
        assert f.read(10) == b""
    assert upload(f"{prefix}/small", [b"ab", b"", bytearray(b"cd")], endpoint=endpoint) == 4
    info = stat(f"{prefix}/small", endpoint=endpoint)
    assert (info.uri, info.size) == (f"{prefix}/small", 4)
    assert exists(f"{prefix}/small", endpoint=endpoint)
    with open_read(f"{prefix}/small", endpoint=endpoint) as f:
        assert f.read() == b"abcd"


@pytest.mark.parametrize("fail_after", [MiB, 12 * MiB], ids=["single-put", "multipart"])
def test_failed_upload_leaves_no_object(place: tuple[str, str | None], fail_after: int,
                                        s3: Any) -> None:
    prefix, endpoint = place
    uri = f"{prefix}/broken.bin"
    with pytest.raises(RuntimeError, match="source broke"):
        upload(uri, _chunks(20 * MiB, hashlib.sha256(), fail_after), endpoint=endpoint)
    assert not exists(uri, endpoint=endpoint)
    if uri.startswith("s3://"):
        bucket = uri.split("/")[2]
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    else:
        store = Path(uri.removeprefix("file://")).parent
        assert list(store.iterdir()) == []  # no temporary file left behind either


def test_missing_objects(s3_endpoint: str, bucket: str, tmp_path: Path,
                         http_dir: HttpDir) -> None:
    missing = [f"s3://{bucket}/nope", "s3://swebox-no-such-bucket/key",
               (tmp_path / "nope").as_uri(), str(tmp_path / "nope"), f"{http_dir.url}/nope"]
    for uri in missing:
        assert not exists(uri, endpoint=s3_endpoint)
        for call in (lambda u: stat(u, endpoint=s3_endpoint),
                     lambda u: _read_all(u, s3_endpoint)):
            with pytest.raises(ObjectNotFound) as info:
                call(uri)
            assert isinstance(info.value, ImageNotFound) and info.value.exit_code == 3
            assert uri in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ObjectNotFound, match="bucket 'swebox-no-such-bucket' does not exist"):
        _read_all("s3://swebox-no-such-bucket/key", s3_endpoint)  # HEAD cannot tell


@pytest.mark.parametrize("uri, message", [
    ("ftp://example.invalid/x", "unknown scheme 'ftp' in ftp://example.invalid/x: use s3://"),
    ("s3://bucket-only", "need s3://bucket/key"),
    ("s3:///key", "need s3://bucket/key"),
    ("file://relative/x", "need an absolute path"),
    ("", "empty object URI"),
    ("http:///nohost", "no host"),
])
def test_bad_uris(uri: str, message: str) -> None:
    for call in (stat, exists, lambda u: _read_all(u), lambda u: upload(u, [b"x"])):
        with pytest.raises(BadInput) as info:
            call(uri)
        assert message in str(info.value) and info.value.exit_code == 2


def test_unreachable_endpoint_is_one_clear_line(monkeypatch: pytest.MonkeyPatch,
                                                store_env: None) -> None:
    # One attempt: with the default five, botocore's backoff makes a refused connection take
    # 13-22 s; what is tested here is the message, and that nothing hangs.
    monkeypatch.setattr(stores, "S3_MAX_ATTEMPTS", 1)
    calls: list[Callable[[], object]] = [
        lambda: stat("s3://b-k-t/key", endpoint=DEAD),
        lambda: exists("s3://b-k-t/key", endpoint=DEAD),
        lambda: _read_all("s3://b-k-t/key", DEAD),
        lambda: upload("s3://b-k-t/key", [b"x" * 100], endpoint=DEAD),
        lambda: upload("s3://b-k-t/key", _chunks(12 * MiB, hashlib.sha256()), endpoint=DEAD),
    ]
    for call in calls:
        start = time.monotonic()
        with pytest.raises(SweboxError) as info:
            call()
        assert time.monotonic() - start < 5
        text = str(info.value)
        assert not isinstance(info.value, ObjectNotFound | BadInput), text
        assert "\n" not in text and "127.0.0.1:1" in text and "b-k-t" in text, text
        assert "SWEBOX_S3_ENDPOINT" in text and "credentials" in text, text


def test_endpoint_precedence(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str,
                             bucket: str) -> None:
    monkeypatch.setattr(stores, "S3_MAX_ATTEMPTS", 1)
    uri = f"s3://{bucket}/k"
    upload(uri, [b"hello"], endpoint=s3_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    assert stat(uri).size == 5  # AWS_ENDPOINT_URL when nothing more specific is set
    monkeypatch.setenv("SWEBOX_S3_ENDPOINT", DEAD)
    with pytest.raises(SweboxError, match=r"127\.0\.0\.1:1"):
        stat(uri)  # SWEBOX_S3_ENDPOINT wins over AWS_ENDPOINT_URL
    assert stat(uri, endpoint=s3_endpoint).size == 5  # and the argument over both


def test_http_reader(http_dir: HttpDir) -> None:
    data = os.urandom(3 * MiB + 4321)
    (http_dir.root / "blob.bin").write_bytes(data)
    uri = f"{http_dir.url}/blob.bin"
    assert stat(uri).size == len(data)
    assert exists(uri)
    expected = (hashlib.sha256(data).hexdigest(), len(data))
    assert _read_all(uri, size=65_537) == expected
    assert _read_all(f"{http_dir.url}/redirect/blob.bin") == expected
    assert stat(f"{http_dir.url}/redirect/blob.bin").size == len(data)
    with open_read(uri) as f:
        assert f.read(7) == data[:7]
    with pytest.raises(BadInput, match="read-only"):
        upload(uri, [b"x"])
    with pytest.raises(SweboxError, match=r"cannot fetch http://127\.0\.0\.1:1/x") as info:
        stat(f"{DEAD}/x")
    assert not isinstance(info.value, ObjectNotFound)


def test_http_messages_leave_out_secrets(http_dir: HttpDir) -> None:
    uri = f"http://user:pw@{http_dir.url.removeprefix('http://')}/nope?X-Amz-Signature=s3cr3t"
    with pytest.raises(ObjectNotFound) as info:
        stat(uri)
    assert "s3cr3t" not in str(info.value) and "pw" not in str(info.value)
    assert f"{http_dir.url}/nope?..." in str(info.value)


def test_file_upload_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "obj.bin"
    target.write_bytes(b"old")
    seen: list[bytes] = []

    def source() -> Iterator[bytes]:
        yield b"new-"
        seen.append(target.read_bytes())  # mid-upload, readers still see the old object
        yield b"content"

    assert upload(target.as_uri(), source()) == len(b"new-content")
    assert seen == [b"old"]
    assert target.read_bytes() == b"new-content"
    assert [p.name for p in tmp_path.iterdir()] == ["obj.bin"]
    with pytest.raises(RuntimeError):
        upload(str(target), _chunks(3 * MiB, hashlib.sha256(), fail_after=MiB))
    assert target.read_bytes() == b"new-content"
    assert [p.name for p in tmp_path.iterdir()] == ["obj.bin"]


def test_plain_and_encoded_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert upload("sub/dir/x.bin", [b"abc"]) == 3  # relative, parents created
    assert (tmp_path / "sub/dir/x.bin").read_bytes() == b"abc"
    assert stat("sub/dir/x.bin").size == 3
    assert upload((tmp_path / "a b.bin").as_uri(), [b"xy"]) == 2  # file:///.../a%20b.bin
    assert (tmp_path / "a b.bin").read_bytes() == b"xy"
    with pytest.raises(BadInput, match="not a regular file"):
        stat(str(tmp_path / "sub"))
