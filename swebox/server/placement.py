"""Where the server's sandboxes run: one interface, so that the SLURM placement (sandboxes on
allocated nodes) slots in later beside the local one without touching the routes.

A Placement starts a sandbox for a request and says how much room it has and whether its
engine is reachable. `LocalPlacement` runs them on this host's backend (docker, podman or
bwrap). A placement that spreads over nodes returns `remote` sandboxes of the node's server,
which are Sandboxes like any other, so everything above it stays the same.
"""

from __future__ import annotations

import abc
from typing import Any

from swebox.errors import EngineUnavailable
from swebox.sandbox import Sandbox, start_sandbox


class Placement(abc.ABC):
    backend: str

    @abc.abstractmethod
    def start(self, image: str, **options: Any) -> Sandbox:
        """Start one sandbox (SandboxConfig fields as options; the backend is the
        placement's)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise EngineUnavailable when sandboxes cannot start now (readiness)."""

    def describe(self) -> dict[str, Any]:
        return {"placement": type(self).__name__, "backend": self.backend}


class LocalPlacement(Placement):
    def __init__(self, backend: str = "docker") -> None:
        self.backend = backend

    def start(self, image: str, **options: Any) -> Sandbox:
        return start_sandbox(image, backend=self.backend, **options)

    def check(self) -> None:
        if self.backend in ("docker", "podman"):
            from swebox.sandbox.engine import connect

            try:
                connect(self.backend).api.ping()  # type: ignore[arg-type]
            except Exception as e:
                raise EngineUnavailable(f"{self.backend} is not reachable: {e}") from e
        elif self.backend == "bwrap":
            from swebox.sandbox.bwrap import host_tools

            host_tools()
