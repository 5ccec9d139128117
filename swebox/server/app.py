"""The runtime server's HTTP face: routes validate and translate, the library does the work.

Auth: `Authorization: Bearer <key>` (or `X-API-Key`), checked against the key store; no key
or a wrong one is 401; a key sees only its own sandboxes (another key's id is 404, as if it
did not exist). Admission: past `max_sandboxes` in all or `max_per_key` for one key, a start
is 429 with `Retry-After`. `/healthz`, `/readyz` and Prometheus `/metrics` need no key.
Sandbox calls block, so they are plain `def` routes: FastAPI runs them in its thread pool.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from swebox import __version__
from swebox.errors import SweboxError
from swebox.server.openhands import mount as mount_openhands
from swebox.server.routes import sandbox_routes
from swebox.server.state import ANONYMOUS, Server

__all__ = ["ANONYMOUS", "Server", "check_auth_choice", "create_app", "is_loopback"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_auth_choice(host: str, disable_auth: bool, force: bool) -> None:
    """`--disable-auth` only where nothing but this machine can connect, unless forced."""
    if disable_auth and not is_loopback(host) and not force:
        raise SweboxError(f"--disable-auth on {host} would let anyone who reaches this address "
                          "start and run sandboxes",
                          hint="serve on 127.0.0.1, use an API key (`swebox serve keys add`), "
                               "or add --force-disable-auth if the network is yours alone")


def create_app(server: Server) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        server.close_all()  # the server's sandboxes end with it

    app = FastAPI(title="swebox runtime server", version=__version__, lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(SweboxError)
    def _swebox_error(request: Request, e: SweboxError) -> Response:
        from fastapi.responses import JSONResponse

        return JSONResponse({"detail": str(e), "kind": type(e).__name__}, status_code=502)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        if server.backend in ("docker", "podman"):
            from swebox.sandbox.engine import connect

            try:
                connect(server.backend).api.ping()  # type: ignore[arg-type]
            except Exception as e:
                raise HTTPException(503, f"{server.backend} is not reachable: {e}") from e
        return {"ready": True, "backend": server.backend, "live": len(server.boxes),
                "capacity": server.max_sandboxes}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(server.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(sandbox_routes(server))
    mount_openhands(app, server)
    return app
