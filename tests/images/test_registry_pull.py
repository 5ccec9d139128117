"""Pulls from a real registry (Debian's docker-registry on loopback), directly and through a
mirror list, into Docker and Podman."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from swebox.errors import ImageNotFound
from swebox.images import ledger
from swebox.images.supply import fetch_image, mirror_names
from swebox.sandbox.engine import engine_url
from swebox.tasks.resolver import ImageRules
from tests.conftest import BUSYBOX_IMAGE, _require
from tests.images.test_supply import _drop, _has


@pytest.fixture(scope="module")
def pushed(registry: str) -> str:
    """The BusyBox test image in the registry as `<registry>/swebox/busybox:pulltest`."""
    _require("docker", BUSYBOX_IMAGE)
    name = f"{registry}/swebox/busybox:pulltest"
    subprocess.run(["docker", "tag", BUSYBOX_IMAGE, name], check=True)
    subprocess.run(["docker", "push", "-q", name], check=True, capture_output=True)
    subprocess.run(["docker", "rmi", name], check=True, capture_output=True)
    return name


@pytest.fixture(params=["docker", "podman"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    backend = str(request.param)
    _require(backend, BUSYBOX_IMAGE)
    yield backend


def test_mirror_names() -> None:
    mirrors = {"docker.io": ["mirror.local:5000", "other.local/hub"]}
    assert mirror_names("python:3.11", mirrors) == [
        "mirror.local:5000/library/python:3.11", "other.local/hub/library/python:3.11"]
    assert mirror_names("docker.io/org/x", mirrors)[0] == "mirror.local:5000/org/x:latest"
    assert mirror_names("ghcr.io/org/x:v1", mirrors) == []


def test_pull_from_registry_records_and_tags(engine: str, pushed: str) -> None:
    rules = ImageRules.model_validate(
        {"rewrite": [{"match": f"{pushed.split('/')[0]}/*", "local": "pulled_{repository}:{tag}"}]})
    local = "pulled_busybox:pulltest"
    _drop(engine, pushed, local)
    try:
        result = fetch_image(pushed, rules, backend=engine, keep_free=0)  # type: ignore[arg-type]
        assert result.action == "pulled" and result.local == local
        assert _has(engine, local)
        entries = ledger.entries(engine_url(engine))  # type: ignore[arg-type]
        assert any(e.how == "pulled" and any(local in n for n in e.names) for e in entries)
        assert fetch_image(pushed, rules, backend=engine).action == "present"  # type: ignore[arg-type]
    finally:
        _drop(engine, pushed, local)


def test_pull_through_mirror_keeps_the_original_name(engine: str, pushed: str,
                                                     registry: str) -> None:
    # The task names an unreachable registry; its mirror (the loopback registry) has the image.
    original = "127.0.0.1:9/swebox/busybox:pulltest"
    rules = ImageRules(mirrors={"127.0.0.1:9": [registry]})
    _drop(engine, original, pushed)
    try:
        result = fetch_image(original, rules, backend=engine)  # type: ignore[arg-type]
        assert result.action == "pulled" and result.source == pushed
        assert _has(engine, original) and not _has(engine, pushed)
    finally:
        _drop(engine, original, pushed)


def test_missing_tag_lists_every_source_tried(engine: str, registry: str) -> None:
    original = "127.0.0.1:9/swebox/busybox:absent"
    rules = ImageRules(mirrors={"127.0.0.1:9": [registry]})
    with pytest.raises(ImageNotFound) as err:
        fetch_image(original, rules, backend=engine)  # type: ignore[arg-type]
    text = str(err.value)
    assert f"{registry}/swebox/busybox:absent" in text and original in text
    assert "\n" not in text


class _Flaky:
    """A loopback front for the real registry that answers the first `n` manifest requests
    with `status`, as an overloaded registry does, then passes everything through."""

    def __init__(self, upstream: str, n: int, status: int) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        self.failures_left, self.seen = n, 0
        front = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                if "/manifests/" in self.path and front.failures_left > 0:
                    front.failures_left -= 1
                    front.seen += 1
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                r = httpx.request(self.command, f"http://{upstream}{self.path}",
                                  headers={k: v for k, v in self.headers.items()
                                           if k.lower() != "host"})
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("transfer-encoding", "content-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(r.content)

            do_GET = do_HEAD = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_pull_retries_a_registry_that_answers_503(docker_backend: str, pushed: str,
                                                  registry: str) -> None:
    flaky = _Flaky(registry, n=4, status=503)  # two failed pulls (HEAD + GET each)
    name = pushed.replace(registry, flaky.addr)
    _drop("docker", name)
    try:
        result = fetch_image(name, ImageRules(), backend="docker")
        assert result.action == "pulled" and _has("docker", name)
        assert flaky.seen == 4 and flaky.failures_left == 0
    finally:
        flaky.server.shutdown()
        _drop("docker", name)
