"""OpenHands' V0 action execution API, served by swebox itself under `/rt/{runtime_id}/...`
(the `url` a `/start` answers): nothing runs inside the image but the commands.

Auth as the real action server: `X-Session-API-Key` must be the runtime's session key (else
403 {"detail": "Invalid API Key"}), except on /alive and /server_info. A V1 runtime (an
agent server inside the sandbox) gets every request under its prefix proxied instead.

| route | what |
|---|---|
| GET /alive, /server_info | liveness; uptime and idle time |
| POST /execute_action | `{"action": {...}}` -> the observation (always 200, execute.py) |
| POST /upload_file?destination=&recursive= | multipart `file`: into the directory |
|   | `destination`; a zip is unpacked there |
| GET /download_files?path= | a zip of the files under `path` |
| POST /list_files | `{"path"?}` -> names, directories first with a trailing `/` |
| POST /update_mcp_server | accepted; no MCP server is run |
| GET /vscode/connection_token | `{"token": null}` (no VS Code) |
"""

from __future__ import annotations

import asyncio
import hmac
import os
import shlex
import shutil
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from swebox.server.openhands import execute as ex
from swebox.server.openhands.runtimes import Runtime, Runtimes

OPEN_PATHS = ("alive", "server_info")  # no session key needed, as in OpenHands
LIST = ('cd -- "$1" 2>/dev/null || exit 0; for f in * .[!.]* ..?*; do '
        '[ -e "$f" ] || continue; if [ -d "$f" ]; then printf "d/%s\\0" "$f"; '
        'else printf "f/%s\\0" "$f"; fi; done')

Handler = Callable[[Runtimes, Runtime, Request], Awaitable[Response]]


def _detail(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _thread(rts: Runtimes, fn: Callable[..., Any], *args: Any) -> Any:
    """Blocking sandbox work, on the runtimes' own pool (long commands must not starve the
    server's thread pool)."""
    return await asyncio.get_running_loop().run_in_executor(rts.pool, fn, *args)


# -- handlers ----------------------------------------------------------------------------------
async def alive(rts: Runtimes, rt: Runtime, request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def server_info(rts: Runtimes, rt: Runtime, request: Request) -> Response:
    now = time.time()
    return JSONResponse({"uptime": now - rt.started, "idle_time": now - rt.last_action,
                         "resources": {}})


async def execute_action(rts: Runtimes, rt: Runtime, request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("action"), dict):
        return JSONResponse({"detail": "Invalid request parameters",
                             "errors": "the body must be {\"action\": {...}}"}, status_code=422)

    def work() -> dict[str, Any]:
        with rt.lock:  # one action at a time, as OpenHands' server does
            rts.renew_if_due(rt)
            return ex.execute(rt, body["action"])

    return JSONResponse(await _thread(rts, work))


async def upload_file(rts: Runtimes, rt: Runtime, request: Request) -> Response:
    destination = request.query_params.get("destination", "/")
    recursive = request.query_params.get("recursive", "false").lower() in ("true", "1", "yes")
    if not destination.startswith("/"):
        return _detail(400, "Destination must be an absolute path")
    try:
        form = await request.form()
    except AssertionError as e:  # starlette without python-multipart
        return _detail(500, f"this swebox server cannot read uploads: {e}")
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _detail(422, "Invalid request parameters: a multipart field `file` is "
                                "required")
        name = os.path.basename(upload.filename)
        is_zip = name.endswith(".zip")
        if recursive and not is_zip:
            return _detail(400, "Recursive uploads must be zip files")
        try:
            await _thread(rts, _upload, rt, upload, name, destination, is_zip)
        except Exception as e:
            return _detail(500, str(e))
    finally:
        await form.close()
    return JSONResponse({"filename": upload.filename, "destination": destination,
                         "recursive": recursive})


def _upload(rt: Runtime, upload: UploadFile, name: str, destination: str, is_zip: bool
            ) -> None:
    assert rt.ctx is not None
    res = rt.ctx.quiet(f"mkdir -p -- {shlex.quote(destination)}", timeout=60)
    if res.exit_code != 0:
        raise OSError(f"cannot create {destination}: {res.output.strip()[:200]}")
    with tempfile.TemporaryDirectory(prefix="swebox-oh-up-") as tmp:
        saved = Path(tmp) / "upload"
        with open(saved, "wb") as out:
            shutil.copyfileobj(upload.file, out)
        if not is_zip:
            rt.sandbox.upload(saved, f"{destination.rstrip('/')}/{name}")
            return
        tree = Path(tmp) / "tree"
        tree.mkdir(mode=0o755)
        with zipfile.ZipFile(saved) as z:
            z.extractall(tree)  # names with `..` or a leading `/` are made safe by zipfile
        for child in sorted(tree.iterdir()):  # each one: the destination keeps its own mode
            rt.sandbox.upload(child, f"{destination.rstrip('/')}/{child.name}")


async def download_files(rts: Runtimes, rt: Runtime, request: Request) -> Response:
    path = request.query_params.get("path", "")
    if not path.startswith("/"):
        return _detail(400, "Path must be an absolute path")
    try:
        zipped = await _thread(rts, _download, rt, path)
    except FileNotFoundError:
        return _detail(404, "File not found")
    except Exception as e:
        return _detail(500, str(e))
    return FileResponse(zipped, media_type="application/zip",
                        filename=f"{os.path.basename(path.rstrip('/')) or 'root'}.zip",
                        background=BackgroundTask(os.unlink, zipped))


def _download(rt: Runtime, path: str) -> str:
    """A zip of every file under `path`, named relative to it (as OpenHands' os.walk: a path
    that is a file gives an empty zip)."""
    kind = ex._kind(rt, path)
    if kind == "missing":
        raise FileNotFoundError(path)
    fd, zipped = tempfile.mkstemp(prefix="swebox-oh-down-", suffix=".zip")
    os.close(fd)
    with tempfile.TemporaryDirectory(prefix="swebox-oh-down-") as tmp, \
            zipfile.ZipFile(zipped, "w") as z:
        if kind == "dir":
            root = Path(tmp) / "tree"
            rt.sandbox.download(path, root)
            for dirpath, _, files in os.walk(root):
                for f in files:
                    full = os.path.join(dirpath, f)
                    if os.path.isfile(full):
                        z.write(full, arcname=os.path.relpath(full, root))
    return zipped


async def list_files(rts: Runtimes, rt: Runtime, request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        body = {}
    path = body.get("path") if isinstance(body, dict) else None
    full = rt.workdir if path is None else (
        str(path) if str(path).startswith("/") else os.path.join(rt.workdir, str(path)))
    return JSONResponse(await _thread(rts, _list, rt, full))


def _list(rt: Runtime, path: str) -> list[str]:
    assert rt.ctx is not None
    try:
        res = rt.ctx.quiet(f"set -- {shlex.quote(path)}; {LIST}", timeout=60)
    except Exception:
        return []
    dirs, files = [], []
    for item in res.output.split("\0"):
        if item.startswith("d/"):
            dirs.append(item[2:] + "/")
        elif item.startswith("f/"):
            files.append(item[2:])
    return sorted(dirs, key=str.lower) + sorted(files, key=str.lower)


async def update_mcp_server(rts: Runtimes, rt: Runtime, request: Request) -> Response:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, list):
        return _detail(400, "Request must be a list of MCP tools to sync")
    return JSONResponse({"detail": "MCP servers are not run by the swebox runtime",
                         "router_error_log": "" if not body else
                         "swebox's runtime does not run stdio MCP servers; none was added"})


async def vscode_token(rts: Runtimes, rt: Runtime, request: Request) -> Response:
    return JSONResponse({"token": None})


V0: dict[tuple[str, str], Handler] = {
    ("GET", "alive"): alive,
    ("GET", "server_info"): server_info,
    ("POST", "execute_action"): execute_action,
    ("POST", "upload_file"): upload_file,
    ("GET", "download_files"): download_files,
    ("POST", "list_files"): list_files,
    ("POST", "update_mcp_server"): update_mcp_server,
    ("GET", "vscode/connection_token"): vscode_token,
}


def action_routes(rts: Runtimes) -> APIRouter:
    r = APIRouter()

    @r.api_route("/rt/{runtime_id}/{path:path}", include_in_schema=False,
                 methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    async def action_api(runtime_id: str, path: str, request: Request) -> Response:
        rt = rts.find(runtime_id)  # two short locks: no thread hop
        if rt is None:
            return _detail(404, f"no runtime {runtime_id}")
        if rt.status == "stopped":
            return _detail(404, f"runtime {runtime_id} is stopped ({rt.why})")
        if rt.agent is not None:  # V1: the agent server in the sandbox answers everything
            if rt.status == "paused":
                return _detail(503, f"runtime {runtime_id} is paused; POST /resume to resume it")
            response: Response = await rt.agent.proxy(request, path)
            return response
        if path not in OPEN_PATHS and not hmac.compare_digest(
                request.headers.get("x-session-api-key", "").encode(), rt.session_key.encode()):
            return _detail(403, "Invalid API Key")
        handler = V0.get((request.method, path))
        if handler is None:
            known = any(p == path for _, p in V0)
            return _detail(405 if known else 404,
                           "Method Not Allowed" if known else "Not Found")
        if rt.status == "paused":
            return _detail(503, f"runtime {runtime_id} is paused; POST /resume to resume it")
        return await handler(rts, rt, request)

    @r.websocket("/rt/{runtime_id}/{path:path}")
    async def action_socket(websocket: WebSocket, runtime_id: str, path: str) -> None:
        """A V1 runtime's websockets (its agent server's live event streams)."""
        rt = rts.find(runtime_id)  # two short locks: no thread hop
        relay = getattr(rt.agent, "proxy_websocket", None) if rt is not None else None
        if rt is None or rt.status != "running" or relay is None:
            await websocket.close(code=1008)
            return
        await relay(websocket, path)

    return r
