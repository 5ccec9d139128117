"""swebox's own API: every Sandbox operation over HTTP (`/v1/sandboxes/...`)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from swebox.server.state import Server


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


def sandbox_routes(server: Server) -> APIRouter:
    r = APIRouter(prefix="/v1")
    owner = Depends(server.owner)

    @r.post("/sandboxes", status_code=201)
    def start(req: StartRequest, who: str = owner) -> dict[str, Any]:
        sb = server.start(who, req.image, workdir=req.workdir, lease=req.lease,
                          limits=req.limits, env=req.env)
        return {"id": sb.id, "image": req.image, "workdir": req.workdir}

    @r.post("/sandboxes/{sid}/exec")
    def exec_(sid: str, req: ExecRequest, who: str = owner) -> dict[str, Any]:
        sb = server.get(who, sid)
        t0 = time.perf_counter()
        res = sb.exec(req.cmd, timeout=req.timeout, cwd=req.cwd, env=req.env)
        server.exec_seconds.observe(time.perf_counter() - t0)
        return res.model_dump()

    @r.delete("/sandboxes/{sid}", status_code=204)
    def close(sid: str, who: str = owner) -> Response:
        server.entry(who, sid)
        server.close(sid)
        return Response(status_code=204)

    @r.get("/sandboxes")
    def listing(who: str = owner) -> list[dict[str, str]]:
        with server.lock:
            return [{"id": sid} for sid, e in server.boxes.items() if e.owner == who]

    return r
