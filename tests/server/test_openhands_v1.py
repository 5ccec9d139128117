"""The real OpenHands V1 agent-server on plain images, from the portable bundle
(scripts/agent_server_bundle.sh, run by scripts/testbed.sh): nothing is built per image.

- AgentServer on Docker (Debian test image): healthy through the unix-socket channel, a bash
  command through /api/bash (started, then its events polled, as the SDK does), 401 for a
  missing or wrong session key, and the same through `proxy` (file upload and download too).
- AgentServer on bwrap over the BusyBox image: no glibc, no Python in the image at all.
- OpenHands' own SDK (`APIRemoteWorkspace`, in the openhands-v1-client venv) against a swebox
  server on loopback: /start, the wait for `ready`, commands, upload, download, the key.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fastapi
import httpx
import pytest

from swebox.sandbox import Sandbox, start_sandbox
from swebox.server.openhands.v1 import (
    AgentServer,
    bundle_dir,
    is_agent_server_command,
    sandbox_options,
)
from tests.conftest import BASE_IMAGE, BUSYBOX_IMAGE, _require, image_for, serve_in_thread

VENVS = Path(os.environ.get("SWEBOX_VENVS", "/opt/swebox/venvs"))
CLIENT = VENVS / "openhands-v1-client" / "bin" / "python"
DRIVER = Path(__file__).with_name("openhands_v1_driver.py")
KEY = "test-session-key-7f3a"
READY_WAIT = 180.0  # exec'd, the agent server imports for ~10 s on 2 cores; forked, ~1 s


def _require_bundle() -> None:
    if not (bundle_dir() / ".swebox-bundle").is_file():
        pytest.fail(f"the agent-server bundle is missing at {bundle_dir()} -- run "
                    "`bash scripts/testbed.sh`", pytrace=False)


def wait_healthy(agent: AgentServer) -> float:
    t0 = time.monotonic()
    while not agent.healthy():
        failed = agent.failure()
        assert failed is None, failed
        assert time.monotonic() - t0 < READY_WAIT, "the agent server never became healthy"
        time.sleep(0.05)
    return time.monotonic() - t0


def run_bash(client: httpx.Client, command: str, key: str = KEY) -> dict[str, Any]:
    """What RemoteWorkspace.execute_command does: start, then poll the command's events."""
    headers = {"X-Session-API-Key": key}
    r = client.post("/api/bash/start_bash_command", headers=headers,
                    json={"command": command, "timeout": 30})
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    out, err, last = "", "", -1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        params: dict[str, Any] = {"kind__eq": "BashOutput", "command_id__eq": cid,
                                  "sort_order": "TIMESTAMP", "limit": 100}
        if last >= 0:
            params["order__gt"] = last
        page = client.get("/api/bash/bash_events/search", params=params, headers=headers)
        assert page.status_code == 200, page.text
        for ev in page.json()["items"]:
            last = max(last, ev["order"])
            out += ev.get("stdout") or ""
            err += ev.get("stderr") or ""
            if ev.get("exit_code") is not None:
                return {"exit_code": ev["exit_code"], "stdout": out, "stderr": err}
        time.sleep(0.1)
    raise AssertionError(f"{command!r} did not finish")


@pytest.fixture(scope="module")
def agent_sandbox() -> Iterator[tuple[Sandbox, AgentServer, float]]:
    """One agent server on Docker for the tests that only talk to it."""
    _require("docker")
    _require_bundle()
    t0 = time.monotonic()
    with start_sandbox(BASE_IMAGE, backend="docker", workdir="/", pull="never",
                       **sandbox_options()) as sb:  # type: ignore[arg-type]
        agent = AgentServer(sb, KEY)
        agent.start()
        wait_healthy(agent)
        try:
            yield sb, agent, time.monotonic() - t0
        finally:
            agent.close()


def test_command_forms() -> None:
    assert is_agent_server_command("/usr/local/bin/openhands-agent-server --port 60000")
    assert is_agent_server_command(["/usr/local/bin/openhands-agent-server", "--port", "60000"])
    assert is_agent_server_command("/agent-server/.venv/bin/python -m openhands.agent_server "
                                   "--port 60000")
    assert not is_agent_server_command(["/openhands/micromamba/bin/micromamba", "run", "-n",
                                        "openhands", "poetry", "run", "python", "-u", "-m",
                                        "openhands.runtime.action_execution_server", "60000"])
    assert not is_agent_server_command("")


def test_agent_server_on_docker(agent_sandbox: tuple[Sandbox, AgentServer, float]) -> None:
    sb, agent, took = agent_sandbox
    print(f"docker {BASE_IMAGE}: sandbox start -> healthy in {took:.2f}s")
    assert agent.failure() is None
    with httpx.Client(transport=httpx.HTTPTransport(uds=agent.socket_path),
                      base_url="http://agent", timeout=60) as c:
        assert c.get("/health").json() == {"status": "ok"}  # no key needed
        res = run_bash(c, "echo hi from $(python3 -c 'import sys; print(sys.version_info[0])')"
                          "; echo err >&2; echo key=${SESSION_API_KEY:-none} "
                          "level=${LOG_LEVEL:-none} lang=$LANG; exit 4")
        # The image's own python3; neither the session key nor the launcher's settings reach
        # the commands, the locale does.
        assert res == {"exit_code": 4, "stdout": "hi from 3\nkey=none level=none lang=C.UTF-8\n",
                       "stderr": "err\n"}
        for headers in ({}, {"X-Session-API-Key": "wrong"}):
            r = c.post("/api/bash/start_bash_command", json={"command": "touch /pwned"},
                       headers=headers)
            assert r.status_code == 401, r.text
        assert c.get("/api/bash/bash_events/search").status_code == 401
    assert sb.exec("test -e /pwned", timeout=30).exit_code == 1
    # The bundle is read-only inside.
    bundle = str(bundle_dir().resolve())
    assert sb.exec(f"touch {bundle}/venv/x", timeout=30).exit_code != 0


def test_proxy(agent_sandbox: tuple[Sandbox, AgentServer, float]) -> None:
    """`proxy` as a FastAPI route forwards method, query, headers and streamed bodies."""
    sb, agent, _ = agent_sandbox
    app = fastapi.FastAPI()

    @app.api_route("/rt/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def route(request: fastapi.Request, path: str) -> fastapi.Response:
        return await agent.proxy(request, path)

    async def go() -> None:
        ok = {"X-Session-API-Key": KEY}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://swebox", timeout=60) as c:
            assert (await c.get("/rt/health")).status_code == 200
            assert (await c.get("/rt/api/bash/bash_events/search")).status_code == 401
            data = bytes(range(256)) * 4096  # 1 MiB, binary
            r = await c.post("/rt/api/file/upload", params={"path": "/tmp/up/blob.bin"},
                             files={"file": ("blob.bin", data)}, headers=ok)
            assert r.status_code == 200, r.text
            assert r.json()["success"] is True
            r = await c.get("/rt/api/file/download", params={"path": "/tmp/up/blob.bin"},
                            headers=ok)
            assert r.status_code == 200 and r.content == data
            r = await c.get("/rt/api/file/download", params={"path": "/tmp/up/absent"},
                            headers=ok)
            assert r.status_code == 404
            r = await c.post("/rt/api/bash/execute_bash_command", headers=ok,
                             json={"command": "sha256sum /tmp/up/blob.bin", "timeout": 30})
            assert r.status_code == 200 and r.json()["exit_code"] == 0

    asyncio.run(go())
    assert sb.read_file("/tmp/up/blob.bin") == bytes(range(256)) * 4096


def test_websockets_and_own_port(agent_sandbox: tuple[Sandbox, AgentServer, float]) -> None:
    """The bash-events websocket through `proxy_websocket` (a FastAPI route on a real server)
    and through `expose()`'s port (bytes relayed, so HTTP and websockets both work)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    _, agent, _ = agent_sandbox
    app = fastapi.FastAPI()

    @app.websocket("/rt/{path:path}")
    async def socket_route(websocket: fastapi.WebSocket, path: str) -> None:
        await agent.proxy_websocket(websocket, path)

    url, stop = _serve(app)
    port = agent.expose("127.0.0.1")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            assert c.get("/health").status_code == 200
            assert c.get("/api/bash/bash_events/search").status_code == 401
            res = run_bash(c, "echo via the port")
            assert res["exit_code"] == 0 and res["stdout"] == "via the port\n"
        for base in (url.replace("http", "ws") + "/rt", f"ws://127.0.0.1:{port}"):
            with connect(f"{base}/sockets/bash-events", open_timeout=30) as ws:
                ws.send(json.dumps({"type": "auth", "session_api_key": KEY}))
                ws.send(json.dumps({"command": "echo over a websocket", "timeout": 30}))
                out = ""
                while True:
                    event = json.loads(ws.recv(timeout=60))
                    if event.get("kind") == "BashOutput":
                        out += event.get("stdout") or ""
                        if event.get("exit_code") is not None:
                            break
                assert out == "over a websocket\n", base
            with connect(f"{base}/sockets/bash-events", open_timeout=30) as ws:
                ws.send(json.dumps({"type": "auth", "session_api_key": "wrong"}))
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=30)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001, base
    finally:
        stop()


def _serve(app: fastapi.FastAPI) -> tuple[str, Any]:
    """A bare app on a free loopback port in a thread: (base URL, stop)."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        assert thread.is_alive(), "the test app did not start"
        time.sleep(0.02)

    def stop() -> None:
        uv.should_exit = True
        thread.join(timeout=30)

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def test_agent_server_on_busybox_with_bwrap() -> None:
    """An image with no glibc and no Python: the bundle brings its own loader and libraries.
    On bwrap, so the bind and the channel are checked on the engine-less backend too."""
    _require("bwrap", BUSYBOX_IMAGE)
    _require_bundle()
    with start_sandbox(image_for("bwrap", BUSYBOX_IMAGE), backend="bwrap", workdir="/",
                       pull="never", **sandbox_options()) as sb:  # type: ignore[arg-type]
        assert sb.exec("ls /lib*/ld-linux* /usr/bin/python3 2>&1", timeout=30).exit_code != 0
        agent = AgentServer(sb, KEY)
        agent.start()
        took = wait_healthy(agent)
        print(f"bwrap {BUSYBOX_IMAGE}: launch -> healthy in {took:.2f}s")
        with httpx.Client(transport=httpx.HTTPTransport(uds=agent.socket_path),
                          base_url="http://agent", timeout=60) as c:
            res = run_bash(c, "echo $((6 * 7)) on $(uname -s)")
            assert res == {"exit_code": 0, "stdout": "42 on Linux\n", "stderr": ""}
            assert c.get("/api/bash/bash_events/search",
                         headers={"X-Session-API-Key": "wrong"}).status_code == 401
        agent.close()


def test_failure_is_reported(tmp_path: Path) -> None:
    """An agent server that cannot start says so (its log's last lines), instead of
    leaving the runtime pending until the client gives up."""
    _require("docker")
    _require_bundle()
    with start_sandbox(BASE_IMAGE, backend="docker", workdir="/", pull="never",
                       **sandbox_options()) as sb:  # type: ignore[arg-type]
        agent = AgentServer(sb, KEY, args=["--no-such-flag"])
        agent.start()
        deadline = time.monotonic() + READY_WAIT
        while (why := agent.failure()) is None:
            assert time.monotonic() < deadline and not agent.healthy()
            time.sleep(0.1)
        assert "exited" in why and "no-such-flag" in why, why


def test_sdk_api_remote_workspace(tmp_path: Path) -> None:
    """OpenHands' APIRemoteWorkspace, unchanged, on a plain image through a swebox server."""
    control = Path(__file__).parents[2] / "swebox" / "server" / "openhands" / "control.py"
    if not control.is_file():
        pytest.fail("swebox/server/openhands/control.py (the runtime API) is missing",
                    pytrace=False)
    _require("docker")
    _require_bundle()
    if not CLIENT.exists():
        pytest.fail(f"{CLIENT} is missing -- run `bash scripts/testbed.sh`", pytrace=False)
    from swebox.server.app import Server
    from swebox.server.keys import KeyStore

    keys = KeyStore(tmp_path / "keys.json")
    key = keys.add("v1")
    url, stop = serve_in_thread(Server(keys, max_sandboxes=4, max_per_key=4))
    try:
        # /start -> ready as the control API reports it, polled fast; and the runtime URL's
        # shape: OpenHands' client asserts httpx's base_url == url, false for any URL with a
        # path (httpx appends a slash), so a V1 runtime needs a bare scheme://host:port.
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as c:
            t0 = time.monotonic()
            r = c.post("/start", json={"image": BASE_IMAGE, "session_id": "probe",
                                       "command": "/usr/local/bin/openhands-agent-server "
                                                  "--port 60000", "working_dir": "/"})
            assert r.status_code == 200, r.text
            rid, rt_url = r.json()["runtime_id"], r.json()["url"]
            while (pod := c.get("/sessions/probe").json()["pod_status"]) == "pending":
                assert time.monotonic() - t0 < READY_WAIT
                time.sleep(0.05)
            print(f"/start -> {pod} in {time.monotonic() - t0:.2f}s")
            assert pod == "ready"
            assert httpx.get(f"{rt_url}/health", timeout=30).status_code == 200
            c.post("/stop", json={"runtime_id": rid})
        if urlsplit(rt_url).path not in ("", "/"):
            pytest.fail(f"the V1 runtime's url {rt_url} has a path: OpenHands' RemoteWorkspace "
                        "cannot use it (it asserts httpx's base_url == url); give it the agent "
                        "server's own port (AgentServer.expose)", pytrace=False)
        done = subprocess.run([str(CLIENT), str(DRIVER), url, key, BASE_IMAGE],
                              capture_output=True, text=True, timeout=600,
                              env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
                                   "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"APIRemoteWorkspace ready after {out['ready_seconds']}s")
        host = urlsplit(out["host"])  # the agent server's own relayed port, no path
        assert host.hostname == "127.0.0.1" and host.port and host.path in ("", "/")
        assert out["cmd"] == {"exit_code": 0, "stdout": "hello from Linux\n42\n",
                              "stderr": ""}
        assert out["cmd2"] == {"exit_code": 3, "stdout": "/tmp\n", "stderr": "oops\n"}
        assert out["key_in_commands"] == "key=none\n"
        assert out["upload_ok"] and out["cat"] == "uploaded through the agent server\n"
        assert out["download_ok"] and out["download"] == "made in the sandbox\n"
        assert (out["health_no_key"], out["api_no_key"], out["api_wrong_key"],
                out["api_right_key"]) == (200, 401, 401, 200)
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as c:
            assert c.get("/list").json()["total"] == 0  # the workspace stopped its runtime
    finally:
        stop()


def test_a_second_start_of_an_image_takes_a_warm_agent_server(tmp_path: Path) -> None:
    """After a V1 start of an image, the server keeps an agent server of it up (warm.py):
    the next start of that image is ready at its first answer, its bash works and its key
    is its own; spares close with the server."""
    _require("docker")
    _require_bundle()
    from swebox.server.app import Server
    from swebox.server.keys import KeyStore

    keys = KeyStore(tmp_path / "keys.json")
    key = keys.add("warm")
    name = f"warm-{os.getpid()}"
    url, stop = serve_in_thread(Server(keys, max_sandboxes=6, max_per_key=6, name=name))
    body = {"image": BASE_IMAGE, "working_dir": "/", "environment": {},
            "command": "/usr/local/bin/openhands-agent-server --port 60000"}
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as c:
            first = c.post("/start", json={**body, "session_id": "cold"}).json()
            assert first["pod_status"] == "pending"  # cold: the agent server imports itself
            t0 = time.monotonic()
            while c.get("/sessions/cold").json()["pod_status"] != "ready":
                assert time.monotonic() - t0 < READY_WAIT
                time.sleep(0.1)
            c.post("/stop", json={"runtime_id": first["runtime_id"]})
            deadline, n = time.monotonic() + READY_WAIT, 0
            while True:  # the spare started after the cold start may still be importing
                n += 1
                t0 = time.monotonic()
                rt = c.post("/start", json={**body, "session_id": f"warm-{n}"}).json()
                if rt["pod_status"] == "ready":
                    took = time.monotonic() - t0
                    break
                c.post("/stop", json={"runtime_id": rt["runtime_id"]})
                assert time.monotonic() < deadline, "no warm agent server came up"
                time.sleep(2)
            assert took < 2.0, took
            assert rt["session_api_key"] != first["session_api_key"]
            h = {"X-Session-API-Key": rt["session_api_key"]}
            cmd = httpx.post(f"{rt['url']}/api/bash/start_bash_command", headers=h,
                             json={"command": "echo warm; pwd", "timeout": 30}).json()
            for _ in range(100):
                page = httpx.get(f"{rt['url']}/api/bash/bash_events/search", headers=h,
                                 params={"kind__eq": "BashOutput",
                                         "command_id__eq": cmd["id"]}).json()
                if any(e.get("exit_code") is not None for e in page["items"]):
                    break
                time.sleep(0.1)
            assert "warm\n/\n" in "".join(e.get("stdout") or "" for e in page["items"])
            assert httpx.get(f"{rt['url']}/health").status_code == 200
            c.post("/stop", json={"runtime_id": rt["runtime_id"]})
    finally:
        stop()
    from swebox.sandbox.engine import connect

    # (the module's agent_sandbox fixture is still open: count this server's sandboxes only)
    assert connect("docker").api.containers(all=True, filters={"label": f"swebox.server={name}"}
                                            ) == []  # spares included
