"""Read-only binds (`SandboxConfig.binds`): a host directory or file seen inside a sandbox at an
absolute path, which nothing in the sandbox can change.

What they are for: a portable tool the image lacks (the OpenHands agent-server bundle, say),
bound at the same path as on the host so that its absolute paths hold. Docker and Podman get
a `bind` mount with `read_only`; bwrap gets `--ro-bind`. A bind is not part of the sandbox's
filesystem state: a snapshot does not copy it, and the sandboxes forked from the snapshot get
the same binds again (they are in the config the snapshot keeps).
"""

from __future__ import annotations

import os
from typing import Any

from swebox.errors import BadInput


def checked(binds: dict[str, str]) -> list[tuple[str, str]]:
    """(host path, path inside) per bind, shallowest target first; a host path that does not
    exist is BadInput (an engine would create an empty directory there instead)."""
    out = []
    for host, inside in binds.items():
        if not os.path.exists(host):
            raise BadInput(f"bind source {host} does not exist",
                           hint="give an existing host directory or file")
        out.append((host, inside))
    return sorted(out, key=lambda hi: hi[1].rstrip("/").count("/"))


def engine_mounts(binds: dict[str, str]) -> list[Any] | None:
    """docker-py `Mount`s for HostConfig (Docker and Podman): read-only binds."""
    if not binds:
        return None
    from docker.types import Mount

    return [Mount(target=inside, source=host, type="bind", read_only=True)
            for host, inside in checked(binds)]


def bwrap_args(binds: dict[str, str]) -> list[str]:
    """bubblewrap arguments for the binds; they follow the overlays of the root and mounts."""
    args: list[str] = []
    for host, inside in checked(binds):
        args += ["--ro-bind", host, inside]
    return args
