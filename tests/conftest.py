"""Fixtures: real engines started by scripts/testbed.sh; nothing here mocks an engine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from swebox.errors import EngineUnavailable
from swebox.sandbox import Sandbox, start_sandbox
from swebox.sandbox.engine import connect

BASE_IMAGE = os.environ.get("SWEBOX_BASE_IMAGE", "swebox/testbase:bookworm")
BUSYBOX_IMAGE = os.environ.get("SWEBOX_BUSYBOX_IMAGE", "swebox/busybox:test")
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
# "remote" is the remote backend talking to a swebox server in this process, over loopback,
# which runs its sandboxes on docker (started on first use; see `serve_in_thread`).
BACKENDS = ["docker", "podman", "bwrap", "remote"]
ENGINES = ["docker", "podman"]  # the backends that are container engines
# bwrap runs the test images from rootfs directories extracted once per machine, keyed by the
# image id in Docker (a rebuilt image gets a new directory).
ROOTFS_CACHE = Path(os.environ.get("SWEBOX_TEST_ROOTFS", "/var/cache/swebox-test/rootfs"))
_rootfs: dict[str, str] = {}


def rootfs_of(image: str) -> str:
    """The extracted filesystem of a test image (from Docker, `docker save` -> extract_to)."""
    import tempfile

    from swebox.oci.archive import open_source
    from swebox.oci.rootfs import install

    if image in _rootfs:
        return _rootfs[image]
    try:
        api = connect("docker").api
        image_id = str(api.inspect_image(image)["Id"]).removeprefix("sha256:")
    except Exception as e:
        pytest.fail(f"test image {image} missing in docker ({e}) -- run "
                    "`bash scripts/testbed.sh`", pytrace=False)
    dest = ROOTFS_CACHE / image_id
    if not dest.is_dir():
        ROOTFS_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=ROOTFS_CACHE, suffix=".tar") as tar:
            for chunk in api.get_image(image):
                tar.write(chunk)
            tar.flush()
            with open_source(tar.name) as source:
                install(source, dest)  # locked: concurrent runs extract once
    _rootfs[image] = str(dest)
    return str(dest)


def image_for(backend: str, image: str = BASE_IMAGE) -> str:
    """What to pass as `image` for a backend: the reference, or for bwrap its rootfs."""
    return rootfs_of(image) if backend == "bwrap" else image


def engine_of(backend: str) -> str:
    """The engine holding a backend's containers (the remote server's is docker)."""
    return "docker" if backend == "remote" else backend


def serve_in_thread(server: object) -> tuple[str, Callable[[], None]]:
    """A swebox server app on a free loopback port in a thread: (base URL, stop)."""
    import socket
    import threading
    import time

    import uvicorn

    from swebox.server.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(create_app(server), log_level="warning"))  # type: ignore
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        if not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)

    def stop() -> None:
        uv.should_exit = True
        thread.join(timeout=60)

    return f"http://127.0.0.1:{port}", stop


_remote: list[Callable[[], None]] = []


def _require_remote() -> None:
    """Serve docker sandboxes in this process and point the remote backend at it."""
    if _remote:
        return
    import tempfile

    from swebox.server.app import Server
    from swebox.server.keys import KeyStore

    _require("docker")
    keys = KeyStore(Path(tempfile.mkdtemp(prefix="swebox-test-keys-")) / "keys.json")
    key = keys.add("tests")
    url, stop = serve_in_thread(Server(keys, max_sandboxes=256, max_per_key=256,
                                       name=f"tests-{os.getpid()}"))
    os.environ["SWEBOX_SERVER_URL"], os.environ["SWEBOX_API_KEY"] = url, key
    _remote.append(stop)


@pytest.fixture(scope="session", autouse=True)
def _stop_remote() -> Iterator[None]:
    yield
    for stop in _remote:
        stop()


def _require(backend: str, image: str = BASE_IMAGE) -> None:
    if backend == "remote":
        _require_remote()
        return
    if backend == "bwrap":
        from swebox.sandbox.bwrap import host_tools

        try:
            host_tools()
        except EngineUnavailable as e:
            pytest.fail(f"{e} -- run `bash scripts/testbed.sh` first", pytrace=False)
        rootfs_of(image)
        return
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


@pytest.fixture(params=ENGINES)
def engine_backend(request: pytest.FixtureRequest) -> str:
    """Docker and Podman only: for what is about container engines, not the Sandbox contract."""
    _require(request.param)
    return str(request.param)


@pytest.fixture
def docker_backend() -> str:
    _require("docker")
    return "docker"


@pytest.fixture
def sandbox(backend: str) -> Iterator[Sandbox]:
    with start_sandbox(image_for(backend), backend=backend, workdir="/root",
                       pull="never") as sb:
        yield sb


@pytest.fixture
def docker_sandbox(docker_backend: str) -> Iterator[Sandbox]:
    with start_sandbox(BASE_IMAGE, backend="docker", workdir="/root", pull="never") as sb:
        yield sb


REGISTRY = os.environ.get("SWEBOX_TEST_REGISTRY", "127.0.0.1:5055")


@contextlib.contextmanager
def run_registry(root: Path, addr: str, extra: str = "") -> Iterator[str]:
    """Debian's docker-registry serving `addr` (loopback) with storage under `root`; `extra`
    is appended to its config (e.g. an `auth:` section). Yields `host:port`."""
    import shutil
    import subprocess
    import time

    import httpx

    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry not installed -- run `bash scripts/testbed.sh`",
                    pytrace=False)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: {addr}\n" + extra)
    log_path = root / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=log)
        try:
            for _ in range(100):
                if proc.poll() is not None:
                    pytest.fail(f"docker-registry exited: {log_path.read_text()[-500:]}",
                                pytrace=False)
                try:
                    httpx.get(f"http://{addr}/v2/", timeout=1)  # 200, or 401 behind auth
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                pytest.fail(f"docker-registry did not answer on {addr}", pytrace=False)
            yield addr
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real registry on a loopback port, empty at the start; yields `host:port`.

    The port is fixed (SWEBOX_TEST_REGISTRY) because Podman must be told in registries.conf
    that it speaks plain HTTP; scripts/testbed.sh writes that entry."""
    with run_registry(tmp_path_factory.mktemp("registry"), REGISTRY) as addr:
        yield addr


def my_containers() -> list[str]:
    """Names of the swebox containers this test process owns (what a test must not leave)."""
    from swebox.sandbox.lifecycle import HOST, L_OWNER

    api = connect("docker")
    return [c.name for c in api.containers.list(
        all=True, filters={"label": f"{L_OWNER}={HOST}:{os.getpid()}"})]
