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
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from swebox import __version__
from swebox.errors import (
    BadInput,
    EngineUnavailable,
    ImageNotFound,
    PatchFailed,
    SandboxError,
    SandboxTimeout,
    SessionClosed,
    SweboxError,
)
from swebox.server.openhands import mount as mount_openhands
from swebox.server.routes import sandbox_routes
from swebox.server.shell_ws import shell_ws_routes
from swebox.server.state import ANONYMOUS, Server
from swebox.server.tasks import task_routes

log = logging.getLogger("swebox.server")
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


def _reap(server: Server, stop: threading.Event) -> None:
    while not stop.wait(5):
        jobs: list[Callable[[], object]] = [server.reap, *server.periodic]
        for job in jobs:
            try:
                job()
            except Exception:  # a reaper that dies would leave expired entries forever
                log.exception("a periodic server job failed")


def status_of(e: SweboxError) -> int:
    """The HTTP status of a library error; the body's `kind` names the exact class, which the
    remote backend raises again on the client."""
    if isinstance(e, SessionClosed):
        return 409
    if isinstance(e, SandboxTimeout):
        return 504
    if isinstance(e, (BadInput, PatchFailed)):
        return 400
    if isinstance(e, ImageNotFound):
        return 404
    if isinstance(e, EngineUnavailable):
        return 503
    if isinstance(e, SandboxError) and e.message.startswith("no such"):
        return 404
    return 502


def create_app(server: Server) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Sandbox calls block a worker thread each (a test run can take minutes): room for
        # every sandbox to be busy at once plus the quick calls, instead of anyio's 40.
        import anyio.to_thread
        from fastapi.concurrency import run_in_threadpool

        from swebox.server.restart import collect_previous

        anyio.to_thread.current_default_thread_limiter().total_tokens = max(
            64, 2 * server.max_sandboxes + 32)
        gone = await run_in_threadpool(collect_previous, server.backend, server.name)
        if gone:
            log.warning("collected %d sandboxes a previous run of server %r left", len(gone),
                        server.name)
        stop = threading.Event()
        reaper = threading.Thread(target=_reap, args=(server, stop), name="swebox-reaper",
                                  daemon=True)
        reaper.start()
        yield
        stop.set()
        server.close_all()  # the server's sandboxes end with it

    app = FastAPI(title="swebox runtime server", version=__version__, lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(SweboxError)
    def _swebox_error(request: Request, e: SweboxError) -> Response:
        from fastapi.responses import JSONResponse

        return JSONResponse({"detail": str(e), "message": e.message, "hint": e.hint,
                             "kind": type(e).__name__}, status_code=status_of(e))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/readyz")
    def readyz() -> dict[str, Any]:
        try:
            server.placement.check()
        except SweboxError as e:
            raise HTTPException(503, str(e)) from e
        return {"ready": True, **server.placement.describe(), "live": len(server.boxes),
                "capacity": server.max_sandboxes}

    @app.get("/metrics", response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}})
    def metrics() -> Response:
        return Response(generate_latest(server.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(sandbox_routes(server))
    app.include_router(task_routes(server))
    app.include_router(shell_ws_routes(server))
    mount_openhands(app, server)
    return app
