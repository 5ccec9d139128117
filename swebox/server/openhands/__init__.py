"""OpenHands compatibility on plain images: the V0 remote-runtime control API and action-execution
API, and the V1 agent-server (docs/openhands.md).

    control.py       /start, /runtime/{id}, /sessions/{sid}, /sessions/batch, /list, /stop,
                     /pause, /resume (the runtime API, at the server's root, swebox's API keys)
    builds.py        /registry_prefix, /image_exists, /build, /build_status (nothing is built)
    actions.py       /rt/{runtime_id}/...: the action execution API (session key), or a V1
                     runtime's agent server proxied
    execute.py       the actions of /execute_action: run, read, write, edit, ...
    observations.py  the observation JSON OpenHands' client reads back
    runtimes.py      the runtime records and the settings
    warm.py          V1 agent servers started ahead for images started again
    v1.py, relay.py  the V1 agent server from the portable bundle, and its relayed port
    zygote.py        V1 agent servers forked from a pre-loaded one (zygote_main.py, run by
                     the bundle's Python)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from swebox.server.state import Server


def mount(app: FastAPI, server: Server) -> None:
    """Add OpenHands' routes to the server's app; its records go when the app shuts down."""
    from swebox.server.openhands.actions import action_routes
    from swebox.server.openhands.builds import Builds, build_routes
    from swebox.server.openhands.control import control_routes
    from swebox.server.openhands.runtimes import Runtimes, setting
    from swebox.server.openhands.warm import WarmPool

    runtimes, builds, warm = Runtimes(server), Builds(), WarmPool(server)
    if setting(server, "v1_zygote", "1") == "eager":
        _start_zygote()
    app.state.openhands = runtimes
    server.periodic.append(warm.reap)
    app.include_router(control_routes(server, runtimes, builds, warm))
    app.include_router(build_routes(server, builds))
    app.include_router(action_routes(runtimes))

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        try:
            async with inner(a) as state:  # the server closes its sandboxes on the way out
                yield state
        finally:
            warm.close()
            runtimes.clear()

    app.router.lifespan_context = lifespan


def _start_zygote() -> None:
    """The agent-server zygote, started now (it loads for about 10 s in the background), when
    this host has the bundle and swebox runs as root."""
    import os

    from swebox.errors import SweboxError
    from swebox.server.openhands import v1, zygote

    if os.geteuid() != 0:
        return
    try:
        python = v1.bundle_python()
    except SweboxError:
        return
    zygote.shared(python, str(v1.bundle_dir().resolve()), v1.AGENT_ENV)
