"""Persistent shells over a WebSocket: `/v1/sandboxes/{id}/sessions/{s}/ws`.

An agent's commands are short and many, so the per-command cost is the HTTP stack's: about a
millisecond for routing, headers and a fresh request, against 0.3 ms for the command itself.
On one WebSocket per session a command is one text frame each way (a JSON `RunRequest`, a JSON
`RunResult` or `{"error": {kind, message, hint, status}}`), which brings a remote command to
within about half a millisecond of a local one. The HTTP route stays for clients without
WebSockets. Auth is the same key, in the handshake's headers; a refused handshake is closed
with 1008 and the reason.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from swebox.errors import SweboxError
from swebox.server.routes import RunRequest, RunResult
from swebox.server.state import Server


def _error(kind: str, message: str, status: int, hint: str | None = None) -> str:
    return json.dumps({"error": {"kind": kind, "message": message, "hint": hint,
                                 "status": status}})


def shell_ws_routes(server: Server) -> APIRouter:
    from swebox.server.app import status_of

    r = APIRouter()

    @r.websocket("/v1/sandboxes/{sid}/sessions/{name}/ws")
    async def shell(ws: WebSocket, sid: str, name: str) -> None:
        auth = ws.headers.get("authorization")
        try:
            who = server.who(auth, ws.headers.get("x-api-key"))
            sess = server.session(who, sid, name)
        except HTTPException as e:
            await ws.close(code=1008, reason=str(e.detail)[:120])
            return
        await ws.accept()

        def run(req: RunRequest) -> str:
            try:
                with server.using(who, sid):
                    res = sess.run(req.cmd, timeout=req.timeout, output_limit=req.output_limit)
            except HTTPException as e:
                return _error("SandboxError", str(e.detail), e.status_code)
            except SweboxError as e:
                return _error(type(e).__name__, e.message, status_of(e), e.hint)
            server.exec_seconds.observe(res.duration)
            return RunResult(**res.model_dump(), cwd=sess.cwd).model_dump_json()

        try:
            while True:
                text = await ws.receive_text()
                try:
                    req = RunRequest.model_validate_json(text)
                except ValidationError as e:
                    await ws.send_text(_error("BadInput", f"not a run request: {e}", 422))
                    continue
                await ws.send_text(await run_in_threadpool(run, req))
        except WebSocketDisconnect:
            return

    return r
