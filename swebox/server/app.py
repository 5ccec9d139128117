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
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field

from swebox import __version__
from swebox.errors import SweboxError
from swebox.sandbox import Sandbox, start_sandbox
from swebox.server.keys import KeyStore

ANONYMOUS = "-"


class StartRequest(BaseModel):
    image: str = Field(min_length=1)
    workdir: str = "/testbed"
    lease: float = Field(default=3600.0, gt=0)
    limits: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)


class ExecRequest(BaseModel):
    cmd: str | list[str]
    timeout: float | None = Field(default=None, gt=0)
    cwd: str | None = None
    env: dict[str, str] | None = None


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


class Server:
    def __init__(self, keys: KeyStore | None, backend: str = "docker",
                 max_sandboxes: int = 64, max_per_key: int = 32) -> None:
        self.keys, self.backend = keys, backend
        self.max_sandboxes, self.max_per_key = max_sandboxes, max_per_key
        self.boxes: dict[str, tuple[str, Sandbox]] = {}
        self.pending: dict[str, int] = {}  # starts admitted and under way, per key
        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        self.live = Gauge("swebox_sandboxes_live", "Sandboxes running", registry=self.registry)
        self.starts = Counter("swebox_sandbox_starts", "Sandboxes started", ["outcome"],
                              registry=self.registry)
        self.refused = Counter("swebox_admission_refused", "Starts refused with 429",
                               registry=self.registry)
        self.exec_seconds = Histogram("swebox_exec_seconds", "Exec latency",
                                      registry=self.registry)

    def owner(self, authorization: str | None = Header(None),
              x_api_key: str | None = Header(None)) -> str:
        if self.keys is None:
            return ANONYMOUS
        key = x_api_key or (authorization[7:] if authorization and
                            authorization.lower().startswith("bearer ") else None)
        name = self.keys.verify(key)
        if name is None:
            raise HTTPException(401, "missing or wrong API key",
                                headers={"WWW-Authenticate": "Bearer"})
        return name

    def get(self, owner: str, sid: str) -> Sandbox:
        with self.lock:
            entry = self.boxes.get(sid)
        if entry is None or entry[0] != owner:
            raise HTTPException(404, f"no sandbox {sid}")
        return entry[1]

    def admit(self, owner: str) -> None:
        with self.lock:
            mine = sum(1 for o, _ in self.boxes.values() if o == owner) + \
                self.pending.get(owner, 0)
            total = len(self.boxes) + sum(self.pending.values())
            if total >= self.max_sandboxes or mine >= self.max_per_key:
                self.refused.inc()
                which = "the server's" if total >= self.max_sandboxes else "this key's"
                raise HTTPException(429, f"{which} sandbox limit is reached",
                                    headers={"Retry-After": "2"})
            self.pending[owner] = self.pending.get(owner, 0) + 1

    def close_all(self) -> None:
        with self.lock:
            boxes, self.boxes = list(self.boxes.values()), {}
        for _, sb in boxes:
            try:
                sb.close()
            except SweboxError:
                pass


def create_app(server: Server) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        server.close_all()  # the server's sandboxes end with it

    app = FastAPI(title="swebox runtime server", version=__version__, lifespan=lifespan)
    app.state.server = server
    owner = Depends(server.owner)

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

    @app.post("/v1/sandboxes", status_code=201)
    def start(req: StartRequest, who: str = owner) -> dict[str, Any]:
        server.admit(who)
        try:
            sb = start_sandbox(req.image, backend=server.backend, workdir=req.workdir,
                               lease=req.lease, limits=req.limits, env=req.env)
        except SweboxError:
            server.starts.labels("failed").inc()
            raise
        finally:
            with server.lock:
                server.pending[who] -= 1
        with server.lock:
            server.boxes[sb.id] = (who, sb)
            server.live.set(len(server.boxes))
        server.starts.labels("ok").inc()
        return {"id": sb.id, "image": req.image, "workdir": req.workdir}

    @app.post("/v1/sandboxes/{sid}/exec")
    def exec_(sid: str, req: ExecRequest, who: str = owner) -> dict[str, Any]:
        sb = server.get(who, sid)
        t0 = time.perf_counter()
        res = sb.exec(req.cmd, timeout=req.timeout, cwd=req.cwd, env=req.env)
        server.exec_seconds.observe(time.perf_counter() - t0)
        return res.model_dump()

    @app.delete("/v1/sandboxes/{sid}", status_code=204)
    def close(sid: str, who: str = owner) -> Response:
        sb = server.get(who, sid)
        with server.lock:
            server.boxes.pop(sid, None)
            server.live.set(len(server.boxes))
        sb.close()
        return Response(status_code=204)

    @app.get("/v1/sandboxes")
    def listing(who: str = owner) -> list[dict[str, str]]:
        with server.lock:
            return [{"id": sid} for sid, (o, _) in server.boxes.items() if o == who]

    return app
