"""Grading and whole episodes on the server: `POST /v1/grade` (issue 8's grader with the
server's backend) and `/v1/episodes` (SweEnv: reset, step, finish, close), so a trainer with no
engine of its own runs episodes remotely. Each counts against the key's sandbox limit."""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from swebox.agents.env import EpisodeLimits, RewardOptions, SweEnv
from swebox.grading.grader import GradeOptions, grade
from swebox.server.state import Server
from swebox.tasks.model import Task


class GradeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: float = Field(default=1800.0, gt=0)
    test_command: str | None = None
    log_format: str | None = None
    memory: str | None = None
    cpus: float | None = Field(default=None, gt=0)


class GradeRequest(BaseModel):
    task: Task
    patch: str
    options: GradeSettings = Field(default_factory=GradeSettings)
    log: bool = Field(default=False, description="also return the test log")


class EpisodeRequest(BaseModel):
    task: Task
    dialect: str = "swebox"
    limits: EpisodeLimits = Field(default_factory=EpisodeLimits)
    reward: RewardOptions = Field(default_factory=RewardOptions)


class StepRequest(BaseModel):
    action: Any = Field(description="a tool call, a list of them, an assistant message, or "
                                    "text, as SweEnv.step takes it")


class FinishRequest(BaseModel):
    reason: str = "closed"


def task_routes(server: Server) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["tasks"])
    owner = Depends(server.owner)

    @r.post("/grade")
    def grade_(req: GradeRequest, who: str = owner) -> dict[str, Any]:
        with server.slot(who):
            opts = GradeOptions(backend=server.backend, **req.options.model_dump())
            verdict, log = grade(req.task, req.patch, opts)
        out: dict[str, Any] = {"verdict": verdict.model_dump(mode="json")}
        if req.log:
            out["log"] = log
        return out

    def _env(who: str, eid: str) -> SweEnv:
        with server.lock:
            got = server.episodes.get(eid)
        if got is None or got[0] != who:
            raise HTTPException(404, f"no episode {eid}")
        return got[1]

    @r.post("/episodes", status_code=201)
    def reset(req: EpisodeRequest, who: str = owner) -> dict[str, Any]:
        eid = secrets.token_hex(8)
        with server.slot(who):
            env = SweEnv(req.task, dialect=req.dialect, backend=server.backend,
                         limits=req.limits, reward=req.reward)
            try:
                obs = env.reset()
            except BaseException:
                env.close()
                raise
            with server.lock:
                server.episodes[eid] = (who, env, time.time())
        return {"episode": eid, "observation": obs.model_dump()}

    @r.post("/episodes/{eid}/step")
    def step(eid: str, req: StepRequest, who: str = owner) -> dict[str, Any]:
        env = _env(who, eid)
        text, reward, done, info = env.step(req.action)
        return {"observation": text, "reward": reward, "done": done, "info": info}

    @r.post("/episodes/{eid}/finish")
    def finish(eid: str, req: FinishRequest, who: str = owner) -> dict[str, Any]:
        return _env(who, eid).finish(req.reason)

    @r.delete("/episodes/{eid}", status_code=204)
    def close(eid: str, who: str = owner) -> Response:
        env = _env(who, eid)
        with server.lock:
            server.episodes.pop(eid, None)
        with contextlib.suppress(Exception):
            env.close()
        return Response(status_code=204)

    return r
