"""Sandboxes: one interface, one file per backend.

    from swebox.sandbox import start_sandbox
    with start_sandbox("swebox/testbase:bookworm", backend="docker") as sb:
        print(sb.exec("echo hi", timeout=10).output)

Backends: `docker` and `podman` (swebox.sandbox.docker), `bwrap` (swebox.sandbox.bwrap: no
engine; the image is a rootfs directory or a reference extracted by swebox.oci.rootfs), `remote`
(swebox.sandbox.remote: a swebox runtime server runs it; `url=`, `api_key=`).
"""

from __future__ import annotations

from swebox.sandbox.base import Sandbox, Snapshot
from swebox.sandbox.models import ExecResult, Limits, PatchResult, SandboxConfig, make_config
from swebox.sandbox.session import Session


def start_sandbox(image: str | None = None, *, config: SandboxConfig | None = None,
                  **options: object) -> Sandbox:
    """Start a sandbox from a config, or from an image plus SandboxConfig fields."""
    if config is None:
        config = make_config(image=image, **options)
    elif image is not None or options:
        config = make_config(**{**config.model_dump(), **options,
                                **({"image": image} if image else {})})
    if config.backend in ("docker", "podman"):
        from swebox.sandbox.docker import DockerSandbox

        return DockerSandbox.start(config)
    if config.backend == "bwrap":
        from swebox.sandbox.bwrap import BwrapSandbox

        return BwrapSandbox.start(config)
    if config.backend == "remote":
        from swebox.sandbox.remote import RemoteSandbox

        return RemoteSandbox.start(config)
    raise NotImplementedError(config.backend)  # pragma: no cover - Literal keeps this out


__all__ = ["ExecResult", "Limits", "PatchResult", "Sandbox", "SandboxConfig", "Session",
           "Snapshot", "make_config", "start_sandbox"]
