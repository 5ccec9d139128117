"""The real OpenHands V1 agent-server inside a sandbox of a plain image (docs/openhands-v1.md).

Nothing is built per image. `scripts/agent_server_bundle.sh` builds one portable bundle on the
host (a CPython copy, a venv with `openhands-agent-server`, and the dynamic loader, glibc and
every shared library they need), and a V1 runtime's sandbox gets it as a read-only bind at the
same path (`sandbox_options()`), so it runs whatever libc and Python the image has, or none.

Traffic. Sandboxes have no network, so the agent server listens on a unix socket in the
sandbox's /dev/shm (besides 127.0.0.1:<port> in the sandbox's own loopback, which its
conversations call back on), and the server reaches that socket from the host through
`/proc/<the sandbox's PID 1>/root/...`: the kernel resolves the path in the sandbox's own mount
namespace, and a unix socket does not care about network namespaces. No port, no bridge, no
relay process, and nothing shared on the host's filesystem; it needs the engine on this machine
(as `kill_processes` does), which Docker, Podman and bwrap sandboxes of this server are.

The agent server enforces the session key itself (SESSION_API_KEY / OH_SESSION_API_KEYS_0 in
its environment only; it strips both from the commands it runs). `proxy` forwards HTTP as is;
websockets (`/sockets/...`, live conversation events) go through `proxy_websocket`. OpenHands'
V1 client cannot use a runtime URL with a path, though (relay.py): `expose()` gives the agent
server a TCP port of its own on the host, relayed byte for byte to the same socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shlex
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import fastapi
import httpx
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, StreamingResponse

from swebox.errors import SandboxError
from swebox.sandbox import Sandbox
from swebox.server.openhands.relay import Relay

BUNDLE_HINT = "run `bash scripts/agent_server_bundle.sh` on this host (it builds it once)"
PORT = 60000  # what the runtime API's command asks for (`--port 60000`)
RUN_DIR = "/dev/shm/.swebox-agent-server"  # socket, pid and log, inside the sandbox
SOCKET = "agent.sock"
LAUNCH_TIMEOUT = 30.0
# What the agent server reads at import (forked ones: what the zygote loaded with), unless the
# sandbox's own environment says otherwise.
AGENT_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no network: no fetch
             "OH_ENABLE_VSCODE": "false", "OH_PRELOAD_TOOLS": "false",
             "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
# Headers that belong to one hop (RFC 9110 7.6.1) or that the client library sets itself.
HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                 "trailer", "transfer-encoding", "upgrade", "host"})

# Runs in the sandbox with the bundle's python (-I: the image's PYTHONPATH and friends never
# reach it): a session of its own, the socket and pid file, then the agent server's own `main`
# (its arguments, logging, signal handling) served on the unix socket and on 127.0.0.1:<port>.
LAUNCHER = r"""
import os, pwd, socket, sys
run_dir, port, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
try:
    os.setsid()
except OSError:
    pass
if not os.environ.get("HOME"):
    try:
        os.environ["HOME"] = pwd.getpwuid(os.getuid()).pw_dir or "/"
    except KeyError:
        os.environ["HOME"] = "/root" if os.getuid() == 0 else "/tmp"
try:  # as the official image: state under /workspace, commands run in /
    os.makedirs("/workspace", exist_ok=True)
except OSError:
    for key, sub in (("OH_CONVERSATIONS_PATH", "conversations"),
                     ("OH_BASH_EVENTS_DIR", "bash_events")):
        os.environ.setdefault(key, os.path.join(run_dir, sub))
with open(os.path.join(run_dir, "pid"), "w") as f:
    f.write(str(os.getpid()))
path = os.path.join(run_dir, "agent.sock")
if os.path.exists(path):
    os.unlink(path)
quiet = "LOG_LEVEL" not in os.environ  # no access log line per poll (the log is in /dev/shm)
if quiet:
    os.environ["LOG_LEVEL"] = "WARNING"
from openhands.agent_server import __main__ as oh
if quiet:  # read at import; the agent's commands must not inherit it
    del os.environ["LOG_LEVEL"]
uds = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
uds.bind(path)
os.chmod(path, 0o600)
socks = [uds]
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    tcp.bind(("127.0.0.1", port))
    socks.append(tcp)
except OSError as e:
    print(f"swebox: 127.0.0.1:{port} is taken ({e}); serving the unix socket only", flush=True)
run = oh.LoggingServer.run
oh.LoggingServer.run = lambda self, sockets=None: run(self, sockets=socks)
sys.argv = ["openhands-agent-server", *args]
oh.main()
"""


def bundle_dir() -> Path:
    return Path(os.environ.get("SWEBOX_AGENT_SERVER") or "/opt/swebox/agent-server")


def bundle_python() -> str:
    """The bundle's interpreter (its venv's wrapper); SandboxError when there is no bundle."""
    bundle = bundle_dir()
    python = bundle / "venv" / "bin" / "python"
    if not (bundle / ".swebox-bundle").is_file() or not os.access(python, os.X_OK):
        raise SandboxError(f"the OpenHands agent-server bundle is missing at {bundle}",
                           hint=BUNDLE_HINT)
    return str(python)


def is_agent_server_command(command: str | list[str]) -> bool:
    """Whether a runtime API `command` starts OpenHands' V1 agent server: the binary
    (`/usr/local/bin/openhands-agent-server --port 60000`) or the module (`... python -m
    openhands.agent_server`), as a string or an argv list."""
    argv = _argv(command)
    if not argv:
        return False
    if os.path.basename(argv[0]) == "openhands-agent-server":
        return True
    return any(a == "-m" and b == "openhands.agent_server" for a, b in itertools.pairwise(argv))


def agent_server_args(command: str | list[str]) -> list[str]:
    """The agent server's own arguments in a runtime API `command` (after the program)."""
    argv = _argv(command)
    for i, (a, b) in enumerate(itertools.pairwise(argv)):
        if a == "-m" and b == "openhands.agent_server":
            return argv[i + 2:]
    return argv[1:]


def _argv(command: str | list[str]) -> list[str]:
    if isinstance(command, str):
        try:
            return shlex.split(command)
        except ValueError:
            return command.split()
    return [str(a) for a in command]


def sandbox_options() -> dict[str, Any]:
    """What a V1 runtime's sandbox needs beyond the request's: the bundle, bound read-only at
    its own path, and the locale the official image sets (libtmux needs UTF-8)."""
    bundle_python()
    bundle = str(bundle_dir().resolve())
    return {"binds": {bundle: bundle}, "env": {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}}


def init_pid(sandbox: Sandbox) -> int:
    """The host pid of the sandbox's PID 1."""
    backend = sandbox.config.backend
    if backend in ("docker", "podman"):
        from swebox.sandbox.engine import engine_url

        url = engine_url(backend, sandbox.config.engine_url)
        if not url.startswith(("unix://", "/")):
            raise SandboxError(f"the agent server needs {backend} on this machine, not at {url}",
                               hint="run the swebox server on the engine's host")
        api = sandbox.api  # type: ignore[attr-defined]
        pid = int(api.inspect_container(sandbox.id)["State"]["Pid"] or 0)
    elif backend == "bwrap":
        pid = int(getattr(sandbox, "_init_pid", 0))
    else:
        raise SandboxError(f"the agent server cannot run in a {backend} sandbox",
                           hint="use backend docker, podman or bwrap")
    if pid <= 0 or not os.path.exists(f"/proc/{pid}/root"):
        raise SandboxError(f"sandbox {sandbox.id} is not running")
    return pid


def _host_root(sandbox: Sandbox) -> str:
    """The sandbox's root as this host sees it: /proc/<its PID 1>/root."""
    return f"/proc/{init_pid(sandbox)}/root"


class AgentServer:
    """One agent server in one sandbox, reached through its unix socket."""

    def __init__(self, sandbox: Sandbox, session_api_key: str, *,
                 args: Sequence[str] = ("--port", str(PORT)), fork: str = "1") -> None:
        self.sandbox = sandbox
        self.fork = fork  # zygote.py: "0" never forks, "1"/"eager" forks when it can
        self.pid: int | None = None  # its host pid, when forked
        self.launched_by: str | None = None  # "fork" or "exec"
        self.session_api_key = session_api_key
        self.args = list(args)
        self.port = PORT
        for a, b in itertools.pairwise(self.args):
            if a == "--port" and b.isdigit():
                self.port = int(b)
        self._root: str | None = None
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._relay: Relay | None = None
        self._started = False
        self._lock = threading.Lock()  # the control API polls from many threads

    @property
    def socket_path(self) -> str:
        """The host path of the agent server's unix socket."""
        return self._path()

    def start(self) -> None:
        """Launch the agent server inside the sandbox in the background (one exec)."""
        python = bundle_python()
        self._path()
        self._started = True
        mine = self.sandbox.config.env
        env = {k: v for k, v in AGENT_ENV.items() if k not in mine}
        env.update(SESSION_API_KEY=self.session_api_key,
                   OH_SESSION_API_KEYS_0=self.session_api_key)
        from swebox.server.openhands import zygote

        if zygote.launch(self, python, env, LAUNCHER, self.fork):
            self.launched_by = "fork"
            return
        self.launched_by = "exec"
        script = ('d=$1; shift; mkdir -p "$d" && chmod 700 "$d" && cd / && '
                  '"$@" >"$d/log" 2>&1 </dev/null &')
        argv = ["/bin/sh", "-c", script, "swebox-agent-server", RUN_DIR, python, "-I", "-u",
                "-c", LAUNCHER, RUN_DIR, str(self.port), *self.args]
        res = self.sandbox.exec(argv, timeout=LAUNCH_TIMEOUT, cwd="/", env=env)
        if not res.ok:
            raise SandboxError(f"could not launch the agent server in {self.sandbox.id}: "
                               f"{res.output.strip()[:300]}")

    # -- the channel ------------------------------------------------------------------------
    def _path(self) -> str:
        with self._lock:
            if self._root is None:
                self._root = _host_root(self.sandbox)
            return f"{self._root}{RUN_DIR}/{SOCKET}"

    def _client(self) -> httpx.Client:
        path = self._path()
        with self._lock:
            if self._sync is None:
                self._sync = httpx.Client(transport=httpx.HTTPTransport(uds=path),
                                          base_url="http://agent-server", timeout=5.0)
            return self._sync

    def expose(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """A TCP port on `host` relayed to the agent server (see relay.py): what a V1
        runtime's `url` must be, since OpenHands' client refuses a URL with a path. Returns
        the port; closed by close()."""
        path = self._path()
        with self._lock:
            if self._relay is None:
                self._relay = Relay(host, path, port)
            return self._relay.port

    def healthy(self) -> bool:
        """Whether GET /health answers 2xx (it does once the server serves)."""
        if not self._started:
            return False
        try:
            return self._client().get("/health", timeout=3.0).is_success
        except httpx.HTTPError:
            return False

    def failure(self) -> str | None:
        """Why the agent server is not running, if it exited (None while it runs or starts)."""
        if not self._started:
            return None
        run = f"{self._root}{RUN_DIR}"
        try:
            pid = int(Path(run, "pid").read_text().strip())
        except (OSError, ValueError):
            return None  # not that far yet
        try:
            state = Path(f"{self._root}/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            state = "gone"
        if state not in ("gone", "Z", "X"):
            return None
        try:
            lines = Path(run, "log").read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        tail = " | ".join(ln.strip() for ln in lines[-3:] if ln.strip())
        return f"the agent server exited: {tail or 'no output'}"

    def _aclient(self) -> httpx.AsyncClient:
        if self._async is None:
            self._async = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=self._path()),
                base_url="http://agent-server",
                timeout=httpx.Timeout(connect=10.0, read=3600.0, write=600.0, pool=60.0))
            self._loop = asyncio.get_running_loop()
        return self._async

    async def proxy(self, request: fastapi.Request, path: str) -> fastapi.Response:
        """Forward one request (method, path, query, headers, streamed body) to the agent
        server and stream its answer back; 502 when it cannot be reached."""
        client = self._aclient()
        headers = [(k, v) for k, v in request.headers.raw if k.decode().lower() not in HOP]
        has_body = "content-length" in request.headers or \
            "transfer-encoding" in request.headers
        url = httpx.URL(path="/" + path.lstrip("/"), query=request.url.query.encode())
        req = client.build_request(request.method, url, headers=headers,
                                   content=request.stream() if has_body else None)
        try:
            resp = await client.send(req, stream=True)
        except httpx.HTTPError as e:
            return JSONResponse({"detail": f"the agent server is not reachable: {e}"}, 502)
        out = {k: v for k, v in resp.headers.multi_items() if k.lower() not in HOP}
        return StreamingResponse(_raw(resp), status_code=resp.status_code, headers=out,
                                 background=BackgroundTask(resp.aclose))

    async def proxy_websocket(self, websocket: fastapi.WebSocket, path: str) -> None:
        """Relay one websocket (the agent server's `/sockets/...` streams) both ways; the
        agent server's close code (4001 for a wrong key, say) is passed on."""
        from websockets.asyncio.client import unix_connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        query = websocket.url.query
        uri = "ws://agent-server/" + path.lstrip("/") + (f"?{query}" if query else "")
        keep = {k: v for k, v in websocket.headers.items()
                if k.lower() in ("x-session-api-key", "authorization", "cookie")}
        try:
            upstream = await unix_connect(self._path(), uri, additional_headers=keep,
                                          max_size=None)
        except InvalidStatus as e:
            await websocket.close(code=1008 if e.response.status_code in (401, 403) else 1011)
            return
        except OSError:
            await websocket.close(code=1011)
            return
        await websocket.accept()

        async def down() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for msg in upstream:
                    if isinstance(msg, bytes):
                        await websocket.send_bytes(msg)
                    else:
                        await websocket.send_text(msg)

        async def up() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    msg = await websocket.receive()
                    if msg["type"] == "websocket.disconnect":
                        return
                    if msg.get("text") is not None:
                        await upstream.send(msg["text"])
                    elif msg.get("bytes") is not None:
                        await upstream.send(msg["bytes"])

        tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await upstream.close()
            code = upstream.close_code or 1000
            if code in (1005, 1006, 1015):  # not sendable: nothing, or an abnormal end
                code = 1000 if code == 1005 else 1011
            with contextlib.suppress(Exception):
                await websocket.close(code=code, reason=upstream.close_reason or "")

    def close(self) -> None:
        """Drop the connections and the relay (the agent server ends with its sandbox)."""
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        client, loop, self._async, self._loop = self._async, self._loop, None, None
        if client is None or loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(client.aclose())
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(client.aclose(), loop)


async def _raw(resp: httpx.Response) -> AsyncIterator[bytes]:
    async for chunk in resp.aiter_raw():
        yield chunk
