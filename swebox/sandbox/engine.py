"""Finding and connecting to a container engine (Docker, or Podman's Docker-compatible API)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException

from swebox.errors import EngineUnavailable
from swebox.sandbox.models import BackendName

DOCKER_SOCKET = "unix:///var/run/docker.sock"
PODMAN_SOCKETS = ("/run/podman/podman.sock",)

_HINTS = {
    "docker": "start it with `systemctl start docker` (or `dockerd &` as root), "
    "or point DOCKER_HOST at a running engine",
    "podman": "start its API with `podman system service --time=0 "
    "unix:///run/podman/podman.sock &`, or point SWEBOX_PODMAN_HOST at a running one",
}

_clients: dict[str, docker.DockerClient] = {}
_lock = threading.Lock()


def engine_url(backend: BackendName, url: str | None = None) -> str:
    """The socket URL swebox uses for `backend`, honouring the usual environment variables."""
    if url:
        return url
    if backend == "docker":
        return os.environ.get("DOCKER_HOST") or DOCKER_SOCKET
    for var in ("SWEBOX_PODMAN_HOST", "CONTAINER_HOST"):
        if os.environ.get(var):
            return os.environ[var]
    candidates = list(PODMAN_SOCKETS)
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "podman", "podman.sock"))
    for path in candidates:
        if Path(path).exists():
            return "unix://" + path
    return "unix://" + candidates[0]


def connect(backend: BackendName, url: str | None = None) -> docker.DockerClient:
    """A shared, checked client for the engine; raises EngineUnavailable saying what to do."""
    target = engine_url(backend, url)
    key = f"{backend}|{target}"
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client
        client = _open(backend, target)
        _clients[key] = client
        return client


def _open(backend: BackendName, target: str) -> docker.DockerClient:
    if target.startswith("unix://"):
        path = target[len("unix://") :]
        if not Path(path).exists():
            raise EngineUnavailable(
                f"cannot reach {backend}: socket {path} does not exist", hint=_HINTS[backend]
            )
        if not os.access(path, os.R_OK | os.W_OK):
            raise EngineUnavailable(
                f"cannot reach {backend}: no permission to use socket {path}",
                hint="run as root or add your user to the socket's group (e.g. `docker`)",
            )
    try:
        # A pool large enough for many concurrent sandboxes: each in-flight exec holds one.
        client = docker.DockerClient(base_url=target, timeout=120, max_pool_size=256)
        client.api.ping()
    except DockerException as e:
        raise EngineUnavailable(
            f"cannot reach {backend} at {target}: {_short(e)}", hint=_HINTS[backend]
        ) from e
    except Exception as e:  # requests/urllib3 connection errors surface as various types
        raise EngineUnavailable(
            f"cannot reach {backend} at {target}: {_short(e)}", hint=_HINTS[backend]
        ) from e
    return client


def forget(backend: BackendName, url: str | None = None) -> None:
    """Drop a cached client (after the engine restarted, for example)."""
    with _lock:
        _clients.pop(f"{backend}|{engine_url(backend, url)}", None)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def local_names(backend: BackendName, name: str) -> list[str]:
    """The names to try for a locally stored image. Podman's Docker-compatible API reads a
    name without a registry as docker.io's, but keeps images tagged locally under
    `localhost/`: there the `localhost/` form is tried too."""
    first = name.split("/", 1)[0]
    has_registry = "/" in name and ("." in first or ":" in first or first == "localhost")
    if backend == "podman" and not has_registry:
        return [name, f"localhost/{name}"]
    return [name]


def find_image(backend: BackendName, name: str, url: str | None = None
               ) -> tuple[str, dict[str, Any]] | None:
    """(the name it is stored under, the engine's inspect record) of a local image, trying
    each of `local_names`; None when the engine does not hold it."""
    from docker.errors import NotFound  # ImageNotFound is a NotFound

    api = connect(backend, url).api
    for candidate in local_names(backend, name):
        try:
            return candidate, api.inspect_image(candidate)
        except NotFound:
            continue
    return None
