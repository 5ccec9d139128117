"""OpenHands' runtime API (the control half): start, look up, stop, pause and resume runtimes.

`POST /start` starts a swebox sandbox from the image as it is (a tag recorded by /build stands
for its base image) and answers at once with `{runtime_id, url, session_api_key, work_hosts,
session_id}`, `url` being this server's `/rt/{runtime_id}`, where swebox serves the action API
itself (actions.py). The `command` is not run: the working directory, user and port are read
from it. The sandbox is up when /start answers, so a V0 runtime is `ready` at the client's
first poll (`running` for SkyRL's fork, which waits for that word; see runtimes.ready_status).

A command that starts OpenHands' V1 agent server (`v1.is_agent_server_command`) starts the
sandbox with `v1.sandbox_options()` and that agent server inside it; the runtime is `pending`
until the agent server answers its health check, and its `/rt/{id}/...` is proxied there.

Auth: swebox's API keys (`X-API-Key`, as OpenHands sends it); a key sees only its runtimes.
"""

from __future__ import annotations

import contextlib
import importlib
import secrets
import shlex
import threading
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from swebox.agents.tools.base import ToolContext
from swebox.server.openhands.builds import Builds
from swebox.server.openhands.runtimes import (
    Runtime,
    Runtimes,
    is_skyrl,
    parse_command,
    ready_status,
    register_context,
    setting,
)
from swebox.server.openhands.warm import Spare, WarmPool, new_key, pool_key
from swebox.server.state import Server

PULL = {"always": "always", "never": "never", "ifnotpresent": "missing"}
LABEL = "swebox.openhands.runtime"


class StartRequest(BaseModel):
    """OpenHands' /start body; fields swebox has no use for (runtime_class, resource_factor,
    run_as_user, fs_group, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    image: str = Field(min_length=1)
    command: str | list[str] = ""
    working_dir: str | None = None
    environment: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = Field(default=None, max_length=256)
    image_pull_policy: str | None = None


class RuntimeRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    runtime_id: str = Field(min_length=1)


def v1_module() -> Any | None:
    """swebox.server.openhands.v1 (OpenHands V1 agent servers), when this swebox has it."""
    try:
        return importlib.import_module("swebox.server.openhands.v1")
    except ImportError:
        return None


def _agent_server_words(command: str | list[str]) -> bool:
    text = command if isinstance(command, str) else " ".join(command)
    return "openhands-agent-server" in text or "openhands.agent_server" in text


def open_shell(rt: Runtime) -> None:
    """The runtime's persistent shell, in its working directory, and who it runs as."""
    ctx = ToolContext(rt.sandbox, rt.workdir)
    rt.ctx = ctx
    q = shlex.quote(rt.workdir)
    res = ctx.session.run(f"mkdir -p {q} 2>/dev/null; cd {q}; id -un 2>/dev/null || id -u; "
                          "uname -n", timeout=60)
    lines = res.output.strip().split("\n")
    if len(lines) >= 2:
        rt.username, rt.hostname = lines[-2].strip(), lines[-1].strip().split(".")[0]


def control_routes(server: Server, rts: Runtimes, builds: Builds, warm: WarmPool) -> APIRouter:
    r = APIRouter()
    owner = Depends(server.owner)

    @r.post("/start")
    def start(req: StartRequest, request: Request, who: str = owner) -> dict[str, Any]:
        v1 = v1_module()
        agent_cmd = bool(v1 is not None and v1.is_agent_server_command(req.command))
        if v1 is None and _agent_server_words(req.command):
            raise HTTPException(501, "this swebox server cannot run OpenHands V1 agent "
                                     "servers (swebox.server.openhands.v1 is missing)")
        image = builds.base_of(who, req.image)
        cmd = parse_command(req.command)
        rid, key = secrets.token_hex(8), secrets.token_urlsafe(32)
        sid = req.session_id or rid
        workdir = (req.working_dir or "/") if agent_cmd else (cmd.working_dir or "/workspace")
        if not workdir.startswith("/"):
            raise HTTPException(400, f"the working directory must be absolute: {workdir}")
        env = {str(k): str(v) for k, v in req.environment.items()}
        lease = float(setting(server, "lease", "3600") or 3600)
        options: dict[str, Any] = {
            "workdir": workdir, "env": env, "lease": lease, "labels": {LABEL: rid},
            "pull": PULL.get((req.image_pull_policy or "").lower(), "missing")}
        if (setting(server, "network", "") or "").lower() in ("1", "true", "yes"):
            options["limits"] = {"network": True}
        if agent_cmd:  # (the session key goes to the agent server's process only)
            assert v1 is not None
            extra = dict(v1.sandbox_options())
            options["env"] = {**env, **dict(extra.pop("env", None) or {})}
            options["labels"] = {**options["labels"], **dict(extra.pop("labels", None) or {})}
            options.update(extra)
        old = rts.by_session(who, sid)
        if old is not None and old.status != "stopped":
            rts.stop(old, "its session started a new runtime")
        spare = None
        if agent_cmd:
            assert v1 is not None
            args = list(v1.agent_server_args(req.command)) \
                if hasattr(v1, "agent_server_args") else []
            spare = _warm_start(server, warm, v1, who, image, workdir, options, args,
                                request.scope["server"][0], lease)
        # An unknown image is ImageNotFound (404, naming the image and how to get it), a bad
        # reference BadInput (400): the app's SweboxError handler answers both.
        sb = spare.sandbox if spare is not None else server.start(who, image, **options)
        rt = Runtime(runtime_id=rid, session_id=sid, owner=who, image=image,
                     requested=req.image, sandbox=sb,
                     session_key=spare.key if spare is not None else key,
                     url=f"{request.base_url}rt/{rid}", workdir=workdir,
                     ready=ready_status(server, req.command), skyrl=is_skyrl(req.command),
                     command=cmd, lease=lease)
        rt.expires = rt.started + lease
        try:
            if spare is not None:  # an agent server already up (warm.py)
                rt.agent = spare.agent
                if spare.port:
                    rt.url = f"{request.url.scheme}://{request.url.hostname}:{spare.port}"
            elif agent_cmd:
                assert v1 is not None
                rt.agent = v1.AgentServer(sb, key, **agent_kw(server, v1, args))
                # OpenHands' V1 client refuses a runtime URL with a path (it compares its
                # httpx base_url, which gains a trailing slash, with the URL): the agent server
                # gets a port of its own, on the address this server listens on.
                if hasattr(rt.agent, "expose"):
                    port = rt.agent.expose(request.scope["server"][0])
                    rt.url = f"{request.url.scheme}://{request.url.hostname}:{port}"
                _boot(rt)
            else:
                open_shell(rt)
        except Exception:
            server.close(sb.id, "its OpenHands runtime did not start")
            raise
        register_context(server, rt)
        rts.add(rt)
        return rt.describe()

    @r.get("/runtime/{runtime_id}")
    def runtime(runtime_id: str, who: str = owner) -> dict[str, Any]:
        return rts.get(who, runtime_id).describe()

    @r.get("/sessions/batch")
    def sessions_batch(ids: list[str] = Query(default_factory=list), who: str = owner
                       ) -> list[dict[str, Any]]:
        found = (rts.by_session(who, sid) for sid in ids)
        return [rt.describe() for rt in found if rt is not None]

    @r.get("/sessions/{session_id}")
    def session(session_id: str, who: str = owner) -> dict[str, Any]:
        rt = rts.by_session(who, session_id)
        if rt is None:
            raise HTTPException(404, f"no runtime for session {session_id}")
        return rt.describe()

    @r.get("/list")
    def listing(who: str = owner) -> dict[str, Any]:
        mine = [rt.describe() for rt in rts.mine(who) if rt.status != "stopped"]
        return {"runtimes": mine, "total": len(mine)}

    def _mine(ref: RuntimeRef, who: str) -> Runtime | None:
        rt = rts.find(ref.runtime_id)
        return rt if rt is not None and rt.owner == who else None

    @r.post("/stop")
    def stop(ref: RuntimeRef, who: str = owner) -> dict[str, str]:
        # 200 for an id this key does not know: OpenHands' close() raises on any error.
        rt = _mine(ref, who)
        if rt is None:
            return {"runtime_id": ref.runtime_id, "status": "not found"}
        rts.stop(rt, "stopped by /stop")
        return {"runtime_id": rt.runtime_id, "status": rt.status}

    def _flip(ref: RuntimeRef, who: str, was: str, now: str) -> dict[str, str]:
        rt = _mine(ref, who)
        if rt is None:
            return {"runtime_id": ref.runtime_id, "status": "not found"}
        if rt.status == was:
            rt.status = now
        return {"runtime_id": rt.runtime_id, "status": rt.status}

    @r.post("/pause")
    def pause(ref: RuntimeRef, who: str = owner) -> dict[str, str]:
        # The sandbox keeps running (its lease too); its action API answers 503 until /resume.
        return _flip(ref, who, "running", "paused")

    @r.post("/resume")
    def resume(ref: RuntimeRef, who: str = owner) -> dict[str, str]:
        return _flip(ref, who, "paused", "running")

    return r


def _warm_start(server: Server, warm: WarmPool, v1: Any, who: str, image: str, workdir: str,
                options: dict[str, Any], args: list[str], host: str,
                lease: float) -> Spare | None:
    """A warm spare of this V1 start, registered to `who`, or None; the pool is topped up."""
    key = pool_key(image, workdir, options["env"], args)
    spare = warm.take(key)

    def make() -> Spare:
        opts = {**options, "labels": {k: v for k, v in options["labels"].items()
                                      if k != LABEL} | server.labels("(warm)")}
        sb = server.placement.start(image, **opts)
        session_key, agent = new_key(), None
        try:
            agent = v1.AgentServer(sb, session_key, **agent_kw(server, v1, args))
            port = agent.expose(host) if hasattr(agent, "expose") else None
            agent.start()
        except BaseException:
            if agent is not None:
                with contextlib.suppress(Exception):
                    agent.close()
            sb.close()
            raise
        return Spare(sb, agent, session_key, port)

    warm.top_up(key, make)
    if spare is None:
        return None
    try:
        with server.slot(who):  # 429 past the key's limit: the spare goes back
            server.register(who, spare.sandbox)
    except BaseException:
        warm.give_back(key, spare)
        raise
    try:
        spare.sandbox.renew(lease)
    except BaseException:
        server.close(spare.sandbox.id, "its runtime did not start")
        spare.agent.close()
        raise
    return spare


def agent_kw(server: Server, v1: Any, args: list[str]) -> dict[str, Any]:
    """AgentServer's keywords: the start command's arguments, and whether it may be forked
    from the zygote (setting `v1_zygote`, zygote.py)."""
    if not hasattr(v1, "agent_server_args"):  # (a stand-in, as tests use, takes neither)
        return {}
    return {"args": args, "fork": setting(server, "v1_zygote", "1") or "1"}


def _boot(rt: Runtime) -> None:
    """Start the V1 agent server in the background; the runtime is `pending` meanwhile."""
    def run() -> None:
        try:
            rt.agent.start()
        except Exception as e:
            rt.agent_state, rt.why = "failed", f"the agent server did not start: {e}"

    threading.Thread(target=run, name=f"swebox-oh-v1-{rt.runtime_id}", daemon=True).start()
