"""Fixtures: real engines started by scripts/testbed.sh; nothing here mocks an engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from swebox.errors import EngineUnavailable
from swebox.sandbox import Sandbox, start_sandbox
from swebox.sandbox.engine import connect

BASE_IMAGE = os.environ.get("SWEBOX_BASE_IMAGE", "swebox/testbase:bookworm")
BUSYBOX_IMAGE = os.environ.get("SWEBOX_BUSYBOX_IMAGE", "swebox/busybox:test")
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
BACKENDS = ["docker", "podman"]


def _require(backend: str, image: str = BASE_IMAGE) -> None:
    try:
        api = connect(backend).api  # type: ignore[arg-type]
    except EngineUnavailable as e:
        pytest.fail(f"{e} -- run `bash scripts/testbed.sh` first", pytrace=False)
    try:
        api.inspect_image(image)
    except Exception:
        pytest.fail(f"test image {image} missing in {backend} -- run "
                    "`bash scripts/testbed.sh`", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The image ledger and locks of this test run live in a fresh state directory, so the
    disk budget's tests only ever see (and prune) images the tests themselves loaded."""
    old = os.environ.get("SWEBOX_STATE_DIR")
    os.environ["SWEBOX_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if old is None:
        os.environ.pop("SWEBOX_STATE_DIR", None)
    else:
        os.environ["SWEBOX_STATE_DIR"] = old


@pytest.fixture(scope="session")
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.fail(f"{REALDATA} not found: the shared realdata must sit beside the checkout",
                    pytrace=False)
    return REALDATA


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    _require(request.param)
    return str(request.param)


@pytest.fixture
def docker_backend() -> str:
    _require("docker")
    return "docker"


@pytest.fixture
def sandbox(backend: str) -> Iterator[Sandbox]:
    with start_sandbox(BASE_IMAGE, backend=backend, workdir="/root", pull="never") as sb:
        yield sb


@pytest.fixture
def docker_sandbox(docker_backend: str) -> Iterator[Sandbox]:
    with start_sandbox(BASE_IMAGE, backend="docker", workdir="/root", pull="never") as sb:
        yield sb


REGISTRY = os.environ.get("SWEBOX_TEST_REGISTRY", "127.0.0.1:5055")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry (Debian's docker-registry) on a loopback port, empty at the start.

    Returns `host:port`. The port is fixed (SWEBOX_TEST_REGISTRY) because Podman must be told
    in registries.conf that it speaks plain HTTP; scripts/testbed.sh writes that entry."""
    import shutil
    import subprocess
    import time

    import httpx

    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry not installed -- run `bash scripts/testbed.sh`",
                    pytrace=False)
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {REGISTRY}\n")
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                pytest.fail(f"docker-registry exited: {(root / 'registry.log').read_text()[-500:]}",
                            pytrace=False)
            try:
                if httpx.get(f"http://{REGISTRY}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"docker-registry did not answer on {REGISTRY}", pytrace=False)
        yield REGISTRY
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
