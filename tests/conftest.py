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
