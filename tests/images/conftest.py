"""Fixtures for the object stores: a real S3 server (moto's) and a static HTTP server, both on
127.0.0.1 only; nothing here mocks a client, and nothing leaves the machine."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

# moto runs in a child process: in this one, the objects it holds (tens of MiB) would count in
# the tracemalloc peaks the tests measure for the client side. Closing its stdin stops it, so it
# also goes away when pytest dies.
_MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""

_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL",
          "AWS_ENDPOINT_URL_S3", "SWEBOX_S3_ENDPOINT", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
          "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(scope="session")
def store_env() -> Iterator[None]:
    """Fake credentials, no config files, no instance metadata and no proxies: every request
    the stores make goes to a loopback server of these fixtures. Not autouse: other tests in
    this directory talk to real engines and keep the environment they were given."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _UNSET:
            mp.delenv(name, raising=False)
        missing = "/nonexistent/swebox-test-aws"
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", missing)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="session")
def s3_endpoint(store_env: None) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", _MOTO], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        pytest.fail(f"moto server did not start (exit {proc.wait()}); is moto[server] "
                    "installed?", pytrace=False)
    try:
        yield f"http://127.0.0.1:{line}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    """A plain boto3 client on the moto server, for setting up and checking behind the API."""
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"swebox-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=name)


class _Handler(SimpleHTTPRequestHandler):
    """Static files, plus `/redirect/<path>` answering 302 to `/<path>`."""

    def do_GET(self) -> None:
        if self._redirect():
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if self._redirect():
            return
        super().do_HEAD()

    def _redirect(self) -> bool:
        if not self.path.startswith("/redirect/"):
            return False
        self.send_response(302)
        self.send_header("Location", self.path[len("/redirect"):])
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def copyfile(self, source: Any, outputfile: Any) -> None:
        try:
            super().copyfile(source, outputfile)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a reader that stops early closes the connection; not a server error

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
        pass


@dataclass
class HttpDir:
    url: str
    root: Path


@pytest.fixture
def http_dir(tmp_path: Path, store_env: None) -> Iterator[HttpDir]:
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpDir(f"http://127.0.0.1:{server.server_address[1]}", root)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

