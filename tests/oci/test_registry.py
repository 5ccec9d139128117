"""RegistryClient and RegistrySource against real registries (Debian's docker-registry) on
loopback ports only: the shared one from conftest, filled with `docker push`, and private ones
started here (one behind token auth with a JWT-issuing token server, one whose storage the test
corrupts). Small HTTP fronts run here only for what a registry will not do on demand: Basic
auth, redirects to another origin, transient 429/5xx answers, a schema 1 manifest."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from swebox.errors import CorruptData, ImageNotFound, SweboxError
from swebox.oci.image import Descriptor
from swebox.oci.registry import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    RegistrySource,
    image_size,
)
from tests.conftest import BUSYBOX_IMAGE, run_registry

REPO = "swebox/busybox"
GZIP_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


# --- helpers ------------------------------------------------------------------------------------


def _docker(*args: str) -> str:
    if shutil.which("docker") is None:
        pytest.fail("docker CLI not installed -- run `bash scripts/testbed.sh`", pytrace=False)
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed: {proc.stderr.strip()[-500:]}",
                    pytrace=False)
    return proc.stdout


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _free_port(start: int = 5056) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free loopback port from 5056 on", pytrace=False)


@contextlib.contextmanager
def _run_registry(root: Path, extra: str = "") -> Iterator[str]:
    """A private docker-registry on a free loopback port, storage under `root`: `host:port`."""
    with run_registry(root, f"127.0.0.1:{_free_port()}", extra) as addr:
        yield addr


class _Pusher:
    """Uploads blobs (monolithic POST + PUT) and manifests to a registry with plain httpx."""

    def __init__(self, addr: str, token: str | None = None) -> None:
        self.base = f"http://{addr}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(headers=headers, timeout=60)

    def blob(self, repo: str, data: bytes) -> str:
        digest = _sha256(data)
        r = self.http.post(f"{self.base}/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        location = httpx.URL(self.base).join(r.headers["location"])
        location = location.copy_merge_params({"digest": digest})
        r = self.http.put(location, content=data,
                          headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return digest

    def manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        r = self.http.put(f"{self.base}/v2/{repo}/manifests/{ref}", content=body,
                          headers={"Content-Type": media_type})
        assert r.status_code == 201, r.text
        return _sha256(body)


def _raw_manifest(addr: str, repo: str, ref: str) -> bytes:
    r = httpx.get(f"http://{addr}/v2/{repo}/manifests/{ref}",
                  headers={"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"})
    assert r.status_code == 200, r.text
    return r.content


def _raw_blob(addr: str, repo: str, digest: str) -> bytes:
    r = httpx.get(f"http://{addr}/v2/{repo}/blobs/{digest}", follow_redirects=True)
    assert r.status_code == 200, r.text
    return r.content


def _copy(src: str, repo: str, tag: str, dst: _Pusher) -> bytes:
    """Copy an image byte for byte from registry `src` to `dst`; returns the manifest bytes."""
    body = _raw_manifest(src, repo, tag)
    manifest = json.loads(body)
    for desc in [manifest["config"], *manifest["layers"]]:
        assert dst.blob(repo, _raw_blob(src, repo, desc["digest"])) == desc["digest"]
    dst.manifest(repo, tag, body, manifest["mediaType"])
    return body


def _read_all(stream: Any, chunk: int = 1 << 16) -> bytes:
    out = bytearray()
    with stream:
        while data := stream.read(chunk):
            out += data
    return bytes(out)


def _blob_file(root: Path, digest: str) -> Path:
    hexpart = digest.split(":", 1)[1]
    return root / "data/docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


# --- HTTP fronts and a token server, on loopback ----------------------------------------------


@dataclass
class _Front:
    """What a front does before forwarding GETs to `upstream` (a real registry)."""

    upstream: str
    basic: tuple[str, str] | None = None
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    redirect_blobs_to: str | None = None
    canned: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    lock: threading.Lock = field(default_factory=threading.Lock)
    addr: str = ""


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FrontServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              ) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        front = self.server.front
        path = urlsplit(self.path).path
        with front.lock:
            front.seen.append((path, self.headers.get("Authorization")))
            failure = front.failures.pop(0) if front.failures else None
        if failure:
            self._send(failure[0], b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}',
                       {"Content-Type": "application/json", **failure[1]})
            return
        if front.basic:
            want = "Basic " + base64.b64encode(":".join(front.basic).encode()).decode()
            if self.headers.get("Authorization") != want:
                self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}',
                           {"WWW-Authenticate": 'Basic realm="swebox-test"',
                            "Content-Type": "application/json"})
                return
        if path in front.canned:
            content_type, body = front.canned[path]
            self._send(200, body, {"Content-Type": content_type})
            return
        if front.redirect_blobs_to and "/blobs/" in path:
            self._send(307, b"", {"Location": front.redirect_blobs_to + self.path})
            return
        headers = {"Accept": self.headers.get("Accept", "*/*")}
        with httpx.stream("GET", f"http://{front.upstream}{self.path}", headers=headers) as r:
            self.send_response(r.status_code)
            for name in ("Content-Type", "Docker-Content-Digest", "Content-Length"):
                if name in r.headers:
                    self.send_header(name, r.headers[name])
            if "Content-Length" not in r.headers:
                body = r.read()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.end_headers()
            for chunk in r.iter_raw():
                self.wfile.write(chunk)


class _FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    front: _Front


@contextlib.contextmanager
def _serve(front: _Front) -> Iterator[_Front]:
    server = _FrontServer(("127.0.0.1", 0), _FrontHandler)
    server.front = front
    front.addr = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _TokenIssuer:
    """Issues RS256 JWTs the way distribution's token spec wants them."""

    key: Any
    cert_der: bytes
    users: dict[str, str]
    service: str = "test-registry"
    issuer: str = "test-issuer"
    log: list[dict[str, Any]] = field(default_factory=list)
    addr: str = ""

    def jwt(self, subject: str, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (f"{_b64url(json.dumps(header).encode())}."
                         f"{_b64url(json.dumps(claims).encode())}")
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


class _TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TokenServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        issuer = self.server.issuer
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            name, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if issuer.users.get(name) == password:
                user = name
        issuer.log.append({"path": url.path, "service": query.get("service"),
                           "scope": query.get("scope"), "account": query.get("account"),
                           "user": user, "auth": bool(auth)})
        if url.path != "/token" or user is None:
            body = b'{"details":"incorrect username or password"}'
            self.send_response(401)
        else:
            token = issuer.jwt(user, query.get("scope", []))
            body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                               "issued_at": dt.datetime.now(dt.timezone.utc).isoformat()}
                              ).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _TokenServer(ThreadingHTTPServer):
    daemon_threads = True
    issuer: _TokenIssuer


def _key_and_cert() -> tuple[Any, bytes, bytes]:
    """An RSA key and its self-signed certificate (DER and PEM)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
    except ImportError:
        pytest.fail("the cryptography package is needed to sign registry tokens", pytrace=False)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swebox test token issuer")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return (key, cert.public_bytes(serialization.Encoding.DER),
            cert.public_bytes(serialization.Encoding.PEM))


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_docker_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials from the machine's docker config leak into a test."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


@pytest.fixture(scope="module")
def inspect() -> dict[str, Any]:
    return dict(json.loads(_docker("image", "inspect", BUSYBOX_IMAGE))[0])


@pytest.fixture(scope="module")
def busybox(registry: str, inspect: dict[str, Any]) -> Iterator[str]:
    """`swebox/busybox:test` pushed by the docker CLI to the shared registry."""
    target = f"{registry}/{REPO}:t1"
    _docker("tag", BUSYBOX_IMAGE, target)
    try:
        _docker("push", target)
        yield target
    finally:
        subprocess.run(["docker", "rmi", target], capture_output=True, timeout=60)


@dataclass
class _Indexed:
    amd64: str  # manifest digests
    arm64: str
    oci_tag: str
    list_tag: str


@pytest.fixture(scope="module")
def indexed(registry: str, busybox: str) -> _Indexed:
    """An OCI index and a Docker manifest list over the pushed amd64 manifest and a second,
    arm64/v8 manifest (same layer, its own config), all PUT to the real registry."""
    pusher = _Pusher(registry)
    amd64_body = _raw_manifest(registry, REPO, "t1")
    amd64 = json.loads(amd64_body)
    config = json.loads(_raw_blob(registry, REPO, amd64["config"]["digest"]))
    config.update(architecture="arm64", variant="v8")
    config_bytes = json.dumps(config).encode()
    arm64 = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
             "config": {"mediaType": DOCKER_CONFIG_TYPE, "size": len(config_bytes),
                        "digest": pusher.blob(REPO, config_bytes)},
             "layers": amd64["layers"]}
    arm64_body = json.dumps(arm64).encode()
    arm64_digest = pusher.manifest(REPO, "regtest-arm64", arm64_body, DOCKER_MANIFEST)
    entries = [
        {"mediaType": DOCKER_MANIFEST, "digest": arm64_digest, "size": len(arm64_body),
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": DOCKER_MANIFEST, "digest": _sha256(amd64_body), "size": len(amd64_body),
         "platform": {"architecture": "amd64", "os": "linux"}},
    ]
    oci = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    pusher.manifest(REPO, "regtest-oci", json.dumps(oci).encode(), OCI_INDEX)
    docker_list = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST,
                   "manifests": entries[::-1]}
    pusher.manifest(REPO, "regtest-list", json.dumps(docker_list).encode(), DOCKER_MANIFEST_LIST)
    return _Indexed(_sha256(amd64_body), arm64_digest, "regtest-oci", "regtest-list")


@dataclass
class _Multi:
    ref: str
    diff_ids: list[str]
    big_sha256: str
    big_size: int


@pytest.fixture(scope="module")
def multi(registry: str, busybox: str) -> _Multi:
    """An OCI image of two layers (busybox's, then one with 8 MiB of random bytes)."""
    repo = "swebox/regtest-multi"
    pusher = _Pusher(registry)
    base = json.loads(_raw_manifest(registry, REPO, "t1"))
    config = json.loads(_raw_blob(registry, REPO, base["config"]["digest"]))
    base_layer = _raw_blob(registry, REPO, base["layers"][0]["digest"])
    big = os.urandom(8 << 20)
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = len(big)
        tar.addfile(info, io.BytesIO(big))
    layer_tar = tar_buf.getvalue()
    layer_gz = gzip.compress(layer_tar, compresslevel=1, mtime=0)
    config["rootfs"]["diff_ids"].append(_sha256(layer_tar))
    config.setdefault("history", []).append({"created_by": "swebox test layer"})
    config_bytes = json.dumps(config).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "size": len(config_bytes), "digest": pusher.blob(repo, config_bytes)},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "size": len(base_layer), "digest": pusher.blob(repo, base_layer)},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "size": len(layer_gz), "digest": pusher.blob(repo, layer_gz),
             "annotations": {"org.example.note": "random"}},
        ]}
    pusher.manifest(repo, "t1", json.dumps(manifest).encode(), OCI_MANIFEST)
    return _Multi(f"{registry}/{repo}:t1", config["rootfs"]["diff_ids"],
                  hashlib.sha256(big).hexdigest(), len(layer_gz))


@dataclass
class _TokenRegistry:
    addr: str
    issuer: _TokenIssuer


@pytest.fixture(scope="module")
def token_registry(registry: str, busybox: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[_TokenRegistry]:
    """A docker-registry behind token auth, its token server, and busybox copied into it."""
    key, cert_der, cert_pem = _key_and_cert()
    root = tmp_path_factory.mktemp("token-registry")
    (root / "root.pem").write_bytes(cert_pem)
    issuer = _TokenIssuer(key, cert_der, users={"alice": "s3cret"})
    server = _TokenServer(("127.0.0.1", 0), _TokenHandler)
    server.issuer = issuer
    issuer.addr = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    extra = ("auth:\n  token:\n"
             f"    realm: http://{issuer.addr}/token\n"
             f"    service: {issuer.service}\n"
             f"    issuer: {issuer.issuer}\n"
             f"    rootcertbundle: {root / 'root.pem'}\n")
    try:
        with _run_registry(root, extra) as addr:
            token = issuer.jwt("alice", [f"repository:{REPO}:pull,push"])
            _copy(registry, REPO, "t1", _Pusher(addr, token))
            issuer.log.clear()
            yield _TokenRegistry(addr, issuer)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- reading a pushed image ---------------------------------------------------------------------


def test_config_and_layers_match_docker_inspect(busybox: str, inspect: dict[str, Any]) -> None:
    source = RegistrySource(busybox)
    config = source.config()
    assert source.config_descriptor().digest == inspect["Id"]  # the image ID is the config's
    assert config["rootfs"]["diff_ids"] == inspect["RootFS"]["Layers"]
    assert config["architecture"] == inspect["Architecture"] == "amd64"
    assert config["os"] == inspect["Os"]
    assert config["config"]["Cmd"] == inspect["Config"]["Cmd"]
    assert config["config"]["Env"] == inspect["Config"]["Env"]
    layers = source.layers()
    assert len(layers) == len(inspect["RootFS"]["Layers"])
    assert all(d.media_type == GZIP_LAYER and d.size > 0 for d in layers)
    desc, manifest = source.manifest()
    assert desc.media_type == DOCKER_MANIFEST and manifest["schemaVersion"] == 2
    assert source.describe() == busybox


def test_streamed_blob_matches_digest_and_diff_id(busybox: str, inspect: dict[str, Any]) -> None:
    source = RegistrySource(busybox)
    (layer,) = source.layers()
    data = _read_all(source.open_blob(layer))
    assert data[:2] == b"\x1f\x8b"  # gzip, as stored
    assert _sha256(data) == layer.digest and len(data) == layer.size
    with gzip.GzipFile(fileobj=source.open_blob(layer)) as tar:
        h = hashlib.sha256()
        while chunk := tar.read(1 << 16):
            h.update(chunk)
    assert f"sha256:{h.hexdigest()}" == inspect["RootFS"]["Layers"][0]


def test_by_digest(registry: str, busybox: str) -> None:
    digest = RegistrySource(busybox).digest
    source = RegistrySource(f"{registry}/{REPO}@{digest}")
    assert source.reference == digest and source.digest == digest
    assert source.config()["architecture"] == "amd64"


def test_multi_layer_oci_image_in_order(multi: _Multi) -> None:
    source = RegistrySource(multi.ref)
    assert source.manifest()[0].media_type == OCI_MANIFEST
    layers = source.layers()
    assert source.config()["rootfs"]["diff_ids"] == multi.diff_ids
    assert len(layers) == 2 and layers[1].size == multi.big_size
    assert layers[1].annotations == {"org.example.note": "random"}
    assert all(d.media_type == "application/vnd.oci.image.layer.v1.tar+gzip" for d in layers)
    with tarfile.open(fileobj=source.open_blob(layers[1]), mode="r|gz") as tar:
        member = tar.next()
        assert member is not None and member.name == "big.bin"
        f = tar.extractfile(member)
        assert f is not None
        assert hashlib.sha256(f.read()).hexdigest() == multi.big_sha256


def test_blob_is_streamed_not_buffered(multi: _Multi) -> None:
    source = RegistrySource(multi.ref)
    big = source.layers()[1]
    stream = source.open_blob(big)
    h = hashlib.sha256()
    tracemalloc.start()
    try:
        with stream:
            while chunk := stream.read(1 << 16):
                h.update(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"sha256:{h.hexdigest()}" == big.digest
    assert big.size > 8 << 20 and peak < 2 << 20, f"peak {peak} bytes for a {big.size} blob"


def test_image_size(registry: str, busybox: str, multi: _Multi,
                    inspect: dict[str, Any]) -> None:
    for ref in (busybox, multi.ref):
        source = RegistrySource(ref)
        repo = source.repo
        lengths = [int(httpx.head(f"http://{registry}/v2/{repo}/blobs/{d.digest}")
                       .headers["content-length"])
                   for d in [source.config_descriptor(), *source.layers()]]
        assert image_size(ref) == sum(lengths) > 0
    assert image_size(busybox) < inspect["Size"]  # compressed, below the unpacked size
    assert image_size(multi.ref) > multi.big_size


# --- manifest lists and indexes -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["oci", "list"])
def test_index_resolves_platform(registry: str, indexed: _Indexed, kind: str) -> None:
    tag = indexed.oci_tag if kind == "oci" else indexed.list_tag
    client = RegistryClient(registry)
    desc, index = client.manifest(REPO, tag, platform=None)
    assert desc.media_type == (OCI_INDEX if kind == "oci" else DOCKER_MANIFEST_LIST)
    assert len(index["manifests"]) == 2
    assert client.manifest(REPO, tag)[0].digest == indexed.amd64  # linux/amd64 by default
    assert client.manifest(REPO, tag, platform="linux/arm64")[0].digest == indexed.arm64
    assert client.manifest(REPO, tag, platform="linux/arm64/v8")[0].digest == indexed.arm64
    with pytest.raises(ImageNotFound, match=r"has no linux/arm/v7 image \(it has: "
                                            r"linux/amd64, linux/arm64/v8\)"):
        client.manifest(REPO, tag, platform="linux/arm/v7")
    with pytest.raises(ImageNotFound, match="no linux/arm64/v9"):
        client.manifest(REPO, tag, platform="linux/arm64/v9")
    source = RegistrySource(f"{registry}/{REPO}:{tag}")
    assert source.digest == indexed.amd64 and source.config()["architecture"] == "amd64"
    arm = RegistrySource(f"{registry}/{REPO}:{tag}", platform="linux/arm64")
    assert arm.config()["architecture"] == "arm64"
    assert arm.layers() == source.layers()


# --- what is missing ----------------------------------------------------------------------------


def test_missing_repo_tag_and_blob(registry: str, busybox: str) -> None:
    with pytest.raises(ImageNotFound, match=f"no repository swebox/nope on {registry}"):
        RegistrySource(f"{registry}/swebox/nope:t1").config()
    with pytest.raises(ImageNotFound, match=f"{REPO} has no manifest nope"):
        RegistrySource(f"{registry}/{REPO}:nope").layers()
    source = RegistrySource(busybox)
    with pytest.raises(ImageNotFound, match="not found"):
        source.open_blob(Descriptor(GZIP_LAYER, "sha256:" + "0" * 64, 10))


def test_schema1_is_refused(registry: str, busybox: str) -> None:
    body = json.dumps({"schemaVersion": 1, "name": REPO, "tag": "old", "architecture": "amd64",
                       "fsLayers": [], "history": [], "signatures": []}).encode()
    front = _Front(registry, canned={f"/v2/{REPO}/manifests/old": (
        "application/vnd.docker.distribution.manifest.v1+prettyjws", body)})
    with _serve(front), pytest.raises(SweboxError, match=r"schema 1 manifest.*re-push"):
        RegistrySource(f"{front.addr}/{REPO}:old").layers()


# --- corruption ---------------------------------------------------------------------------------


def test_corrupt_blobs_and_manifest(registry: str, busybox: str, tmp_path: Path) -> None:
    root = tmp_path / "corrupt"
    with _run_registry(root) as addr:
        body = _copy(registry, REPO, "t1", _Pusher(addr))
        ref = f"{addr}/{REPO}:t1"
        source = RegistrySource(ref)
        (layer,) = source.layers()
        config_desc = source.config_descriptor()
        assert _sha256(_read_all(source.open_blob(layer))) == layer.digest  # intact first

        # A size that disagrees with the registry's is caught before any byte is read.
        with pytest.raises(CorruptData, match=f"not the {layer.size + 1} its manifest says"):
            source.open_blob(Descriptor(layer.media_type, layer.digest, layer.size + 1))

        path = _blob_file(root, layer.digest)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        stream = RegistrySource(ref).open_blob(layer)
        got = 0
        with pytest.raises(CorruptData, match=f"digest mismatch, expected {layer.digest}"), \
                stream:
            while chunk := stream.read(1 << 14):
                got += len(chunk)
        assert got > layer.size // 2  # the check fires at the end, not at the damaged byte

        path = _blob_file(root, config_desc.digest)
        path.write_bytes(path.read_bytes().replace(b'"amd64"', b'"amd65"'))
        with pytest.raises(CorruptData, match="digest mismatch"):
            RegistrySource(ref).config()

        digest = _sha256(body)
        path = _blob_file(root, digest)
        assert path.read_bytes() == body
        tampered = body.replace(b'"schemaVersion": 2', b'"schemaVersion":2 ', 1)
        assert tampered != body and len(tampered) == len(body)
        path.write_bytes(tampered)
        with pytest.raises(CorruptData, match=r"manifest of .*: digest mismatch"):
            RegistrySource(ref).layers()
        with pytest.raises(CorruptData, match="digest mismatch"):
            RegistrySource(f"{addr}/{REPO}@{digest}").layers()


# --- auth ---------------------------------------------------------------------------------------


def test_token_auth(token_registry: _TokenRegistry, busybox: str) -> None:
    addr, issuer = token_registry.addr, token_registry.issuer
    assert httpx.get(f"http://{addr}/v2/{REPO}/manifests/t1").status_code == 401
    client = RegistryClient(addr, auth=("alice", "s3cret"))
    source = RegistrySource(f"{addr}/{REPO}:t1", client=client)
    assert source.config() == RegistrySource(busybox).config()
    (layer,) = source.layers()
    assert _sha256(_read_all(source.open_blob(layer))) == layer.digest
    assert client.token_requests == 1  # one token for the scope, reused for every request
    (request,) = issuer.log
    assert request["service"] == ["test-registry"]
    assert request["scope"] == [f"repository:{REPO}:pull"]
    assert request["user"] == "alice" and request["account"] == ["alice"]


def test_token_auth_wrong_password(token_registry: _TokenRegistry) -> None:
    client = RegistryClient(token_registry.addr, auth=("alice", "wrong"))
    with pytest.raises(SweboxError, match=r"refused the credentials of user 'alice'.*password"):
        RegistrySource(f"{token_registry.addr}/{REPO}:t1", client=client).config()


def test_token_auth_anonymous(token_registry: _TokenRegistry) -> None:
    with pytest.raises(SweboxError, match=r"refused anonymous access.*docker login"):
        RegistrySource(f"{token_registry.addr}/{REPO}:t1").layers()


def test_credentials_from_docker_config(token_registry: _TokenRegistry, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    encoded = base64.b64encode(b"alice:s3cret").decode()
    (home / ".docker/config.json").write_text(
        json.dumps({"auths": {token_registry.addr: {"auth": encoded},
                              "other.example:5000": {"auth": "bm9wZTpub3Bl"}}}))
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(home))
    source = RegistrySource(f"{token_registry.addr}/{REPO}:t1")
    assert source.config()["architecture"] == "amd64"
    assert token_registry.issuer.log[-1]["user"] == "alice"


def test_basic_auth_and_redirect_drops_authorization(registry: str, busybox: str) -> None:
    storage = _Front(registry)
    with _serve(storage):
        front = _Front(registry, basic=("bob", "pw"),
                       redirect_blobs_to=f"http://{storage.addr}")
        with _serve(front):
            client = RegistryClient(front.addr, auth=("bob", "pw"))
            source = RegistrySource(f"{front.addr}/{REPO}:t1", client=client)
            assert source.config() == RegistrySource(busybox).config()
            (layer,) = source.layers()
            assert _sha256(_read_all(source.open_blob(layer))) == layer.digest
            assert front.seen[0][1] is None  # anonymous first, then Basic after the challenge
            assert all(auth and auth.startswith("Basic ") for _, auth in front.seen[1:])
            assert {path.rsplit("/", 1)[1] for path, _ in storage.seen} == {
                source.config_descriptor().digest, layer.digest}
            assert all(auth is None for _, auth in storage.seen)  # not sent to another origin

            with pytest.raises(SweboxError, match=r"needs credentials.*docker login"):
                RegistrySource(f"{front.addr}/{REPO}:t1").layers()
            wrong = RegistryClient(front.addr, auth=("bob", "nope"))
            with pytest.raises(SweboxError, match=r"refused access .* for user 'bob'"):
                RegistrySource(f"{front.addr}/{REPO}:t1", client=wrong).layers()


# --- retries ------------------------------------------------------------------------------------


def test_retries_on_5xx_and_429_with_retry_after(registry: str, busybox: str) -> None:
    front = _Front(registry, failures=[(503, {}), (502, {}), (429, {"Retry-After": "1"})])
    with _serve(front):
        client = RegistryClient(front.addr, attempts=5, backoff=0.01)
        start = time.monotonic()
        desc, _ = client.manifest(REPO, "t1")
        assert time.monotonic() - start >= 0.9  # Retry-After was waited for
        assert desc.digest == RegistrySource(busybox).digest
        assert len(front.seen) == 4

        front.failures[:] = [(429, {"Retry-After": "3600"})]
        capped = RegistryClient(front.addr, attempts=3, backoff=0.01, max_retry_after=0.2)
        start = time.monotonic()
        capped.manifest(REPO, "t1")
        assert time.monotonic() - start < 5  # an hour's Retry-After is capped

        front.failures[:] = [(503, {})] * 10
        front.seen.clear()
        with pytest.raises(SweboxError, match=r"HTTP 503 after 3 attempts.*retry later"):
            RegistryClient(front.addr, attempts=3, backoff=0.01).manifest(REPO, "t1")
        assert len(front.seen) == 3


def test_connection_errors_are_retried_then_reported() -> None:
    port = _free_port(5300)
    client = RegistryClient(f"127.0.0.1:{port}", attempts=3, backoff=0.01)
    with pytest.raises(SweboxError, match=f"cannot reach 127.0.0.1:{port} .* after 3 attempts"):
        client.manifest(REPO, "t1")


# --- addresses ----------------------------------------------------------------------------------


def test_addresses_schemes_and_names() -> None:
    assert RegistryClient("127.0.0.1:5055").base_url == "http://127.0.0.1:5055"
    assert RegistryClient("localhost:5000").base_url == "http://localhost:5000"
    assert RegistryClient("[::1]:5000").base_url == "http://[::1]:5000"
    assert RegistryClient("ghcr.io").base_url == "https://ghcr.io"
    assert RegistryClient("registry.example:5000", insecure=True).base_url == (
        "http://registry.example:5000")
    assert RegistryClient("localhost:5000", insecure=False).base_url == "https://localhost:5000"
    hub = RegistrySource("python:3.11")
    assert hub.client.base_url == "https://registry-1.docker.io"
    assert hub.repo == "library/python" and hub.reference == "3.11"
    assert RegistrySource("docker.io/python").repo == "library/python"
    assert RegistrySource("ghcr.io/org/tool@sha256:" + "a" * 64).reference == "sha256:" + "a" * 64
    with pytest.raises(SweboxError, match="bad platform"):
        RegistrySource("python", platform="amd64")
