"""Object stores by URI: `s3://bucket/key`, `file:///abs/path` (or a plain path), `http(s)://`
(read-only).

Everything streams in chunks of about 1 MiB, so memory stays flat however big the object (image
tarballs run to gigabytes). A write is all-or-nothing: a file is written beside its target and
renamed onto it, and a failed S3 multipart upload is aborted. Errors are one line: `BadInput` for
a malformed URI, `ObjectNotFound` for a missing object, and a plain `SweboxError` naming the
bucket or host when the store cannot be reached or refuses the credentials.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel

from swebox.atomic import atomic_path
from swebox.errors import BadInput, ImageNotFound, SweboxError

CHUNK = 1 << 20
MIN_PART = 5 << 20  # S3's smallest multipart part
MAX_PARTS = 10_000  # S3's largest part count
S3_MAX_ATTEMPTS = 5  # module-level so tests (and impatient callers) can lower it
_CLIENT_LOCK = threading.Lock()
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


class ObjectNotFound(ImageNotFound):
    """No object at a URI (or its bucket is missing)."""

    def __init__(self, uri: str, *, hint: str | None = None) -> None:
        super().__init__(f"no object at {uri}",
                         hint=hint or "check the URI, or upload the object first")
        self.uri = uri


class ObjectInfo(BaseModel):
    uri: str
    size: int | None  # None when an HTTP server does not say


def stat(uri: str, *, endpoint: str | None = None) -> ObjectInfo:
    """Size of the object at `uri`; raises `ObjectNotFound` when there is none."""
    scheme, a, b = _parse(uri)
    if scheme == "s3":
        ep = _endpoint(endpoint)
        try:
            head = _s3_client(ep).head_object(Bucket=a, Key=b)
        except Exception as e:
            raise _s3_error(e, uri, a, ep) from e
        return ObjectInfo(uri=uri, size=int(head["ContentLength"]))
    if scheme == "file":
        try:
            st = os.stat(a)
        except OSError as e:
            raise _file_error(e, uri) from e
        if not os.path.isfile(a):
            raise BadInput(f"{uri} is not a regular file")
        return ObjectInfo(uri=uri, size=st.st_size)
    with _http(uri, "HEAD") as resp:
        if resp.status_code not in (405, 501):
            return ObjectInfo(uri=uri, size=_http_size(resp, uri))
    # A server without HEAD: the headers of a GET say as much, and the body is never read.
    with _http(uri, "GET") as resp:
        return ObjectInfo(uri=uri, size=_http_size(resp, uri))


def exists(uri: str, *, endpoint: str | None = None) -> bool:
    """Whether an object is at `uri`; other failures (auth, network) still raise."""
    try:
        stat(uri, endpoint=endpoint)
    except ObjectNotFound:
        return False
    return True


@contextlib.contextmanager
def open_read(uri: str, *, endpoint: str | None = None) -> Iterator[BinaryIO]:
    """A streamed, read-only file over the object: `read(n)` gives at most n bytes, b"" at the
    end. A missing object raises `ObjectNotFound` before the block runs."""
    scheme, a, b = _parse(uri)
    if scheme == "file":
        try:
            f = open(a, "rb")  # noqa: SIM115 - closed by the with below, after the yield
        except OSError as e:
            raise _file_error(e, uri) from e
        with f:
            yield f
        return
    if scheme == "s3":
        ep = _endpoint(endpoint)
        try:
            body = _s3_client(ep).get_object(Bucket=a, Key=b)["Body"]
        except Exception as e:
            raise _s3_error(e, uri, a, ep) from e
        with contextlib.closing(body):
            yield _reader(body.iter_chunks(CHUNK), lambda e: _s3_error(e, uri, a, ep))
        return
    with _http(uri, "GET") as resp:
        _check_status(resp, uri)
        yield _reader(resp.iter_bytes(CHUNK), lambda e: _http_error(e, uri))


def list_keys(prefix: str, *, endpoint: str | None = None) -> Iterator[str]:
    """Names of the objects under `prefix` (a "directory"), relative to it. s3 and file only:
    an HTTP server has no listing."""
    scheme, a, b = _parse(prefix.rstrip("/") + "/_")
    if scheme == "file":
        root = Path(a).parent
        if not root.is_dir():
            return
        for dirpath, _, names in os.walk(root):
            for name in names:
                if not name.startswith("."):  # atomic writes' temporary files
                    yield os.path.relpath(os.path.join(dirpath, name), root)
        return
    if scheme == "s3":
        ep = _endpoint(endpoint)
        key_prefix = b[:-1]
        try:
            pages = _s3_client(ep).get_paginator("list_objects_v2").paginate(
                Bucket=a, Prefix=key_prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    yield obj["Key"][len(key_prefix):]
        except Exception as e:
            raise _s3_error(e, prefix, a, ep) from e
        return
    raise BadInput(f"cannot list {_redact(prefix)}: http(s) stores have no listing",
                   hint="read from it by index, or use s3:// or file://")


def upload(uri: str, stream: BinaryIO | Iterable[bytes], *, endpoint: str | None = None) -> int:
    """Write `stream` (a readable file, or an iterable of byte chunks) to `uri`; the bytes
    written. The object appears whole or not at all; an error raised by `stream` propagates
    as it is."""
    scheme, a, b = _parse(uri)
    if scheme in ("http", "https"):
        raise BadInput(f"cannot write {_redact(uri)}: http(s) objects are read-only",
                       hint="upload to s3:// or file:// instead")
    source = _Counter(stream)
    if scheme == "file":
        try:
            _write_file(Path(a), source)
        except OSError as e:
            if source.error is not None:
                raise
            raise SweboxError(f"cannot write {a}: {e.strerror or _one_line(e)}",
                              hint="check the path, permissions and free space") from e
        return source.count
    ep = _endpoint(endpoint)
    try:
        _s3_client(ep).upload_fileobj(_reader(iter(source), None), a, b,
                                      Config=_transfer_config(stream))
    except Exception as e:
        if source.error is not None:  # the caller's stream failed: its error, not the store's
            raise source.error from None
        raise _s3_error(e, uri, a, ep) from e
    return source.count


def _parse(uri: str) -> tuple[str, str, str]:
    """(scheme, a, b): ("s3", bucket, key), ("file", path, ""), ("http[s]", uri, "")."""
    if not uri or not uri.strip():
        raise BadInput("empty object URI", hint="use s3://bucket/key, file:///path or https://")
    m = _SCHEME.match(uri)
    if m is None:  # a plain path, relative or absolute
        return "file", uri, ""
    scheme = m.group(1).lower()
    if scheme == "s3":
        # Keys are taken literally (no percent-decoding), as the AWS CLI does: `#` and `?` are
        # legal in keys, so urlsplit would cut them off.
        bucket, _, key = uri[m.end():].partition("/")
        if not bucket or not key:
            raise BadInput(f"bad S3 URI {uri}: need s3://bucket/key")
        return "s3", bucket, key
    if scheme == "file":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadInput(f"bad file URI {uri}: need an absolute path, file:///abs/path",
                           hint="or pass a plain relative path")
        return "file", unquote(parts.path), ""
    if scheme in ("http", "https"):
        if not urlsplit(uri).hostname:
            raise BadInput(f"bad URL {_redact(uri)}: no host")
        return scheme, uri, ""
    raise BadInput(f"unknown scheme {scheme!r} in {_redact(uri)}: use s3://, file:// or https://")


def _redact(uri: str) -> str:
    """The URI for messages: user info and query strings of URLs (presigned URLs carry their
    signature there) are left out, so errors can be logged safely."""
    if not uri.lower().startswith(("http://", "https://")):
        return uri
    p = urlsplit(uri)
    netloc = p.netloc.rpartition("@")[2]
    return urlunsplit((p.scheme, netloc, p.path, "..." if p.query else "", ""))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


class _ChunkIO(io.RawIOBase):
    """A raw readable file over an iterator of byte chunks. `on_error` turns a failure of the
    underlying transport into a `SweboxError` (None: let it through unchanged)."""

    def __init__(self, chunks: Iterator[bytes],
                 on_error: Callable[[Exception], SweboxError] | None) -> None:
        self._chunks = chunks
        self._on_error = on_error
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                chunk = next(self._chunks, None)
            except Exception as e:
                if self._on_error is None or isinstance(e, SweboxError):
                    raise
                raise self._on_error(e) from e
            if chunk is None:
                return 0
            self._pending = memoryview(chunk).cast("B")
        n = min(len(buffer), len(self._pending))
        memoryview(buffer).cast("B")[:n] = self._pending[:n]
        # An empty slice would still pin the whole chunk; drop it once it is used up.
        self._pending = self._pending[n:] if n < len(self._pending) else memoryview(b"")
        return n


def _reader(chunks: Iterator[bytes],
            on_error: Callable[[Exception], SweboxError] | None) -> BinaryIO:
    # A small buffer: big reads bypass it and go straight into the caller's result.
    return io.BufferedReader(_ChunkIO(chunks, on_error), buffer_size=64 << 10)


class _Counter:
    """Chunks of a file or an iterable, counted; remembers the error the source raised, so a
    failing source is told apart from a failing store."""

    def __init__(self, stream: BinaryIO | Iterable[bytes]) -> None:
        # A binary file is iterable too, but by lines: unbounded for binary data, so read it.
        read = getattr(stream, "read", None)
        self._chunks: Iterable[bytes] = (iter(lambda: read(CHUNK), b"") if read is not None
                                         else stream)
        self.count = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                self.count += len(chunk)
                yield chunk
                del chunk  # not pinned while the next one is made: one chunk less in memory
        except Exception as e:
            self.error = e
            raise


def _file_error(e: OSError, uri: str) -> SweboxError:
    if isinstance(e, FileNotFoundError | NotADirectoryError):  # a missing directory, too
        return ObjectNotFound(uri)
    if isinstance(e, IsADirectoryError):
        return BadInput(f"{uri} is not a regular file")
    return SweboxError(f"cannot read {uri}: {e.strerror or e}", hint="check permissions")


def _write_file(target: Path, source: _Counter) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        for chunk in source:
            f.write(chunk)


def _endpoint(endpoint: str | None) -> str | None:
    # boto3 reads AWS_ENDPOINT_URL* itself, but resolving here lets errors name the endpoint.
    return (endpoint or os.environ.get("SWEBOX_S3_ENDPOINT") or
            os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None)


def _s3_client(endpoint: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        # Checksums only where S3 requires them: newer botocore adds CRC32 trailers by default,
        # which S3-compatible stores (MinIO, Ceph, R2) reject or mishandle.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
        # botocore waits 60 s to connect by default; a dead endpoint should fail sooner.
        connect_timeout=10, read_timeout=60,
    )
    try:
        # The default boto3 session is not thread-safe while it creates clients; clients are.
        with _CLIENT_LOCK:
            return boto3.client("s3", endpoint_url=endpoint, config=config)
    except ValueError as e:  # botocore's "Invalid endpoint"
        raise BadInput(f"bad S3 endpoint {endpoint!r}: {_one_line(e)}",
                       hint="check SWEBOX_S3_ENDPOINT") from e


def _transfer_config(stream: object) -> Any:
    """5 MiB parts keep memory low; a regular file of known size gets parts big enough to stay
    within S3's 10,000 parts. A stream of unknown length is limited to about 48 GiB."""
    from boto3.s3.transfer import TransferConfig

    part = MIN_PART
    with contextlib.suppress(Exception):  # no fileno, or not a regular file: unknown length
        size = os.fstat(stream.fileno()).st_size  # type: ignore[attr-defined]
        part = max(MIN_PART, -(-size // (MAX_PARTS - 1)))
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                            max_concurrency=2, preferred_transfer_client="classic")
    # A stream that cannot seek is buffered part by part; the default (10 parts held at once)
    # would defeat the flat memory promised above.
    config.max_in_memory_upload_chunks = 1
    return config


_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
           "InvalidToken", "AllAccessDisabled", "AuthorizationHeaderMalformed"}


def _s3_error(e: BaseException, uri: str, bucket: str, endpoint: str | None) -> SweboxError:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    if isinstance(e, SweboxError):
        return e
    where = endpoint or "the default AWS endpoint"
    cause: BaseException | None = e
    while cause is not None and not isinstance(cause, ClientError | BotoCoreError):
        cause = cause.__cause__ or cause.__context__  # boto3 wraps some errors in upload
    if isinstance(cause, ClientError):
        err = cause.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _NOT_FOUND:
            return ObjectNotFound(uri)
        if code == "NoSuchBucket":
            return ObjectNotFound(uri, hint=f"bucket {bucket!r} does not exist at {where}")
        if code in _DENIED or status == 403:
            return SweboxError(f"access to s3://{bucket} at {where} denied ({code})",
                               hint="check the AWS credentials and SWEBOX_S3_ENDPOINT")
        text = " ".join(f"{code} {err.get('Message', '')}".split())
        return SweboxError(f"S3 error on {uri} at {where}: {text}",
                           hint="check SWEBOX_S3_ENDPOINT and the bucket")
    if isinstance(cause, NoCredentialsError):
        return SweboxError(f"no AWS credentials for s3://{bucket}",
                           hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE")
    # Connection refused, timeouts, a broken stream: botocore's text names the endpoint URL.
    return SweboxError(f"S3 request for s3://{bucket} at {where} failed: {_one_line(cause or e)}",
                       hint="check SWEBOX_S3_ENDPOINT, the network and the credentials")


@contextlib.contextmanager
def _http(uri: str, method: str) -> Iterator[Any]:
    import httpx

    timeout = httpx.Timeout(60.0, connect=10.0)
    # identity: a server gzipping on the fly would make Content-Length the compressed size.
    headers = {"Accept-Encoding": "identity"}
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(
                httpx.Client(timeout=timeout, follow_redirects=True, headers=headers))
            resp = stack.enter_context(client.stream(method, uri))
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise _http_error(e, uri) from e
        # Outside the try: errors of the caller's block are the caller's, not the server's.
        yield resp


def _check_status(resp: Any, uri: str) -> None:
    code = resp.status_code
    if code in (404, 410):
        raise ObjectNotFound(_redact(uri))
    if code in (401, 403):
        raise SweboxError(f"access to {_redact(uri)} denied (HTTP {code})",
                          hint="check the URL; a presigned URL may have expired")
    if code >= 400:
        raise SweboxError(f"HTTP {code} from {_redact(uri)}", hint="check the URL and retry")


def _http_size(resp: Any, uri: str) -> int | None:
    _check_status(resp, uri)
    length = resp.headers.get("content-length")
    encoded = resp.headers.get("content-encoding", "identity").lower() != "identity"
    return int(length) if length and length.isdigit() and not encoded else None


def _http_error(e: BaseException, uri: str) -> SweboxError:
    import httpx

    if isinstance(e, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return BadInput(f"bad URL {_redact(uri)}: {_one_line(e)}")
    return SweboxError(f"cannot fetch {_redact(uri)}: {_one_line(e)}",
                       hint="check the URL and the network")
