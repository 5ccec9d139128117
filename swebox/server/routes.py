"""swebox's own API: every Sandbox operation over HTTP (`/v1/sandboxes/...`), so that the
`remote` backend (swebox.sandbox.remote) is the Sandbox interface over the wire.

Sandbox calls block, so routes are plain `def` (FastAPI runs them in its thread pool); only
the file transfers are `async`, to stream request bodies to disk as they arrive.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from swebox.sandbox import ExecResult, Limits, Sandbox
from swebox.server.files import file_routes
from swebox.server.state import Server


class StartRequest(BaseModel):
    """What a client may choose of a SandboxConfig; the backend and host paths are the
    server's."""

    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1)
    workdir: str = "/testbed"
    env: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    lease: float = Field(default=3600.0, gt=0)
    labels: dict[str, str] = Field(default_factory=dict)
    task_id: str | None = None
    pull: str = "missing"
    output_limit: int = Field(default=8 * 1024**2, ge=1024)
    user: str | None = None
    base_commit: str | None = None


class ExecRequest(BaseModel):
    cmd: str | list[str]
    timeout: float | None = Field(default=None, gt=0)
    cwd: str | None = None
    env: dict[str, str] | None = None


class RunRequest(BaseModel):
    cmd: str
    timeout: float | None = Field(default=None, gt=0)
    output_limit: int | None = Field(default=None, ge=1024)


class RunResult(ExecResult):
    cwd: str = ""


class PatchRequest(BaseModel):
    patch: str
    cwd: str | None = None


class RenewRequest(BaseModel):
    lease: float | None = Field(default=None, gt=0)


class ForkRequest(BaseModel):
    n: int = Field(default=1, ge=1, le=256)
    overrides: dict[str, Any] = Field(default_factory=dict)


def describe(sb: Sandbox) -> dict[str, Any]:
    return {"id": sb.id, "config": sb.config.model_dump(mode="json"),
            "expires": getattr(sb, "expires", None)}


def sandbox_routes(server: Server) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["sandboxes"])
    owner = Depends(server.owner)

    @r.post("/sandboxes", status_code=201)
    def start(req: StartRequest, who: str = owner) -> dict[str, Any]:
        opts = req.model_dump(exclude={"image"})
        sb = server.start(who, req.image, **opts)
        return describe(sb)

    @r.get("/sandboxes")
    def listing(who: str = owner) -> list[dict[str, Any]]:
        with server.lock:
            mine = [e.sandbox for e in server.boxes.values() if e.owner == who]
        return [describe(sb) for sb in mine]

    @r.get("/sandboxes/{sid}")
    def info(sid: str, who: str = owner) -> dict[str, Any]:
        return describe(server.get(who, sid))

    @r.delete("/sandboxes/{sid}", status_code=204)
    def close(sid: str, who: str = owner) -> Response:
        server.entry(who, sid)
        server.close(sid)
        return Response(status_code=204)

    @r.post("/sandboxes/{sid}/exec", response_model=ExecResult)
    def exec_(sid: str, req: ExecRequest, who: str = owner) -> Response:
        with server.using(who, sid) as sb:
            t0 = time.perf_counter()
            res = sb.exec(req.cmd, timeout=req.timeout, cwd=req.cwd, env=req.env)
            server.exec_seconds.observe(time.perf_counter() - t0)
        return Response(res.model_dump_json(), media_type="application/json")

    # -- persistent shells --------------------------------------------------------------
    @r.post("/sandboxes/{sid}/sessions", status_code=201)
    def open_session(sid: str, timeout: float | None = Query(None, gt=0),
                     who: str = owner) -> dict[str, Any]:
        entry = server.entry(who, sid)
        with server.using(who, sid) as sb:
            sess = sb.shell(timeout=timeout)
        name = secrets.token_hex(8)
        entry.sessions[name] = sess
        return {"session": name, "pid": sess.pid, "cwd": sess.cwd}

    @r.post("/sandboxes/{sid}/sessions/{name}/run", response_model=RunResult)
    def run(sid: str, name: str, req: RunRequest, who: str = owner) -> Response:
        sess = server.session(who, sid, name)
        t0 = time.perf_counter()
        with server.using(who, sid):
            res = sess.run(req.cmd, timeout=req.timeout, output_limit=req.output_limit)
        server.exec_seconds.observe(time.perf_counter() - t0)
        # The hot path: serialized here in one step, not through FastAPI's generic encoder.
        body = RunResult(**res.model_dump(), cwd=sess.cwd).model_dump_json()
        return Response(body, media_type="application/json")

    @r.post("/sandboxes/{sid}/sessions/{name}/interrupt", status_code=204)
    def interrupt(sid: str, name: str, who: str = owner) -> Response:
        server.session(who, sid, name).interrupt()
        return Response(status_code=204)

    @r.delete("/sandboxes/{sid}/sessions/{name}", status_code=204)
    def close_session(sid: str, name: str, who: str = owner) -> Response:
        sess = server.session(who, sid, name)
        server.entry(who, sid).sessions.pop(name, None)
        sess.close()
        return Response(status_code=204)

    # -- patches, diffs, leases, processes --------------------------------------------
    @r.post("/sandboxes/{sid}/apply_patch")
    def apply_patch(sid: str, req: PatchRequest, who: str = owner) -> dict[str, Any]:
        with server.using(who, sid) as sb:
            return sb.apply_patch(req.patch, cwd=req.cwd).model_dump()

    @r.get("/sandboxes/{sid}/diff", response_class=Response,
           responses={200: {"content": {"text/x-diff": {}}}})
    def diff(sid: str, base: str | None = None, cwd: str | None = None,
             who: str = owner) -> Response:
        with server.using(who, sid) as sb:
            return Response(sb.diff(base=base, cwd=cwd), media_type="text/x-diff")

    @r.post("/sandboxes/{sid}/renew")
    def renew(sid: str, req: RenewRequest, who: str = owner) -> dict[str, float]:
        with server.using(who, sid) as sb:
            return {"expires": sb.renew(req.lease)}

    @r.post("/sandboxes/{sid}/kill_processes")
    def kill_processes(sid: str, who: str = owner) -> dict[str, int]:
        with server.using(who, sid) as sb:
            return {"killed": sb.kill_processes()}

    @r.get("/sandboxes/{sid}/oom_killed")
    def oom_killed(sid: str, who: str = owner) -> dict[str, bool]:
        with server.using(who, sid) as sb:
            return {"oom_killed": sb.oom_killed()}

    # -- snapshots and forks -------------------------------------------------------------
    @r.post("/sandboxes/{sid}/snapshot", status_code=201)
    def snapshot(sid: str, who: str = owner) -> dict[str, str]:
        with server.using(who, sid) as sb:
            snap = sb.snapshot()
        name = secrets.token_hex(8)
        with server.lock:
            server.snapshots[name] = (who, snap)
        return {"snapshot": name, "ref": snap.ref}

    @r.post("/snapshots/{name}/start", status_code=201)
    def start_from(name: str, req: ForkRequest, who: str = owner) -> list[dict[str, Any]]:
        snap = server.snapshot(who, name)
        return [describe(sb) for sb in server.start_many(who, snap, req.n, req.overrides)]

    @r.delete("/snapshots/{name}", status_code=204)
    def remove_snapshot(name: str, who: str = owner) -> Response:
        server.snapshot(who, name)
        server.drop_snapshot(name)
        return Response(status_code=204)

    r.include_router(file_routes(server))
    return r
