"""A restarted server's first act: the sandboxes an earlier run of it left (killed before it
could close them) are found by their labels and collected, never left orphaned.

They are collected rather than adopted: their shells and sessions lived in the dead process,
and a client of that run already saw its connection fail. Each carries `swebox.server=<name>`
and an owner label naming the server's process; a sandbox of this server whose owner process
is gone is removed. Sandboxes of other servers or of live processes are left alone.
"""

from __future__ import annotations

import contextlib
from typing import Any

from swebox.errors import SweboxError
from swebox.sandbox import lifecycle
from swebox.server.state import L_SERVER


def collect_previous(backend: str, name: str) -> list[str]:
    """Remove this server's sandboxes whose owner process is gone; returns their ids."""
    if backend == "bwrap":
        from swebox.sandbox.bwrap import leftovers

        gone = []
        for info in leftovers.list_sandboxes():
            labels = info.get("labels") or {}
            if labels.get(L_SERVER) == name and lifecycle.owner_alive(labels) is False:
                leftovers._remove_stale(info)
                gone.append(str(info.get("id") or ""))
        return gone
    from swebox.sandbox.engine import connect

    try:
        api = connect(backend).api  # type: ignore[arg-type]
    except SweboxError:
        return []
    gone = []
    for c in api.containers(all=True, filters={"label": f"{L_SERVER}={name}"}):
        tags: dict[str, Any] = c.get("Labels") or {}
        if lifecycle.owner_alive(tags) is False:
            with contextlib.suppress(Exception):
                api.remove_container(c["Id"], force=True)
                gone.append(c["Id"])
    return gone
