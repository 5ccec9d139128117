"""The `remote` backend: the Sandbox interface over a swebox runtime server's HTTP API.

    sb = start_sandbox(image, backend="remote", url="http://node7:8477", api_key=KEY)

`url` and `api_key` default to $SWEBOX_SERVER_URL and $SWEBOX_API_KEY. Every operation is one
request on a kept-alive connection (one httpx client per server and key, shared by threads).
A start past the server's limits (429) waits as `Retry-After` says, up to `SWEBOX_ADMISSION_WAIT`
seconds (default 600). The server's errors come back as the same swebox error classes a local
backend raises (the body names the class), so code cannot tell the backends apart; a sandbox
that died on the server (lease, OOM) is a SandboxError saying why (410).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from swebox import errors
from swebox.errors import BadInput, EngineUnavailable, SandboxError, SweboxError
from swebox.sandbox import lifecycle
from swebox.sandbox.base import Command, Sandbox, Snapshot
from swebox.sandbox.models import ExecResult, PatchResult, SandboxConfig
from swebox.sandbox.session import Session
from swebox.sandbox.tarstream import extract_stream, tar_stream

# What a server's start takes of a SandboxConfig; the rest (backend, host paths) is its own.
START_FIELDS = ("workdir", "env", "limits", "lease", "labels", "task_id", "pull",
                "output_limit", "user", "base_commit")
_clients: dict[tuple[str, str], Client] = {}
_clients_lock = threading.Lock()


class Client:
    """One server and key: requests, 429 waits, and errors turned back into swebox errors."""

    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers,
                                 timeout=httpx.Timeout(60.0, connect=10.0),
                                 limits=httpx.Limits(max_connections=256,
                                                     max_keepalive_connections=64))

    @staticmethod
    def of(config: SandboxConfig) -> Client:
        return Client.get(config.url, config.api_key)

    @staticmethod
    def get(url: str | None = None, api_key: str | None = None) -> Client:
        """The shared client of a server and key (defaults: $SWEBOX_SERVER_URL and
        $SWEBOX_API_KEY)."""
        url = url or os.environ.get("SWEBOX_SERVER_URL")
        if not url:
            raise BadInput("the remote backend needs the server's URL",
                           hint="pass url=... or set SWEBOX_SERVER_URL")
        key = api_key or os.environ.get("SWEBOX_API_KEY")
        with _clients_lock:
            client = _clients.get((url, key or ""))
            if client is None:
                client = _clients[(url, key or "")] = Client(url, key)
        return client

    def call(self, method: str, path: str, *, timeout: float | None = 60.0,
             admit: bool = False, **kw: Any) -> httpx.Response:
        wait_until = time.monotonic() + float(os.environ.get("SWEBOX_ADMISSION_WAIT", "600"))
        tmo = httpx.Timeout(timeout, connect=10.0)
        while True:
            try:
                resp = self.http.request(method, path, timeout=tmo, **kw)
            except httpx.TimeoutException as e:
                raise errors.SandboxTimeout(f"the swebox server at {self.url} did not answer "
                                            f"{method} {path} in time: {e}") from e
            except httpx.HTTPError as e:
                raise EngineUnavailable(f"cannot reach the swebox server at {self.url}: {e}",
                                        hint="is `swebox serve` running there? check url= / "
                                             "SWEBOX_SERVER_URL") from e
            if resp.status_code == 429 and admit and time.monotonic() < wait_until:
                time.sleep(_retry_after(resp))
                continue
            if resp.status_code >= 400:
                raise self.error(resp, f"{method} {path}")
            return resp

    def error(self, resp: httpx.Response, what: str) -> SweboxError:
        try:
            body = resp.json()
        except ValueError:
            body = {"detail": resp.text[:300]}
        if not isinstance(body, dict):
            body = {"detail": str(body)[:300]}
        kind = getattr(errors, str(body.get("kind")), None)
        if isinstance(kind, type) and issubclass(kind, SweboxError):
            return kind(str(body.get("message") or body.get("detail")), hint=body.get("hint"))
        detail = body.get("detail")
        if isinstance(detail, list):  # FastAPI's validation errors: name the fields
            detail = "; ".join(f"{'.'.join(str(x) for x in d.get('loc', []))}: {d.get('msg')}"
                               for d in detail if isinstance(d, dict))
        code = resp.status_code
        if code == 401:
            return BadInput(f"the swebox server at {self.url} refused the API key",
                            hint="set SWEBOX_API_KEY or pass api_key=; create one with "
                                 "`swebox serve keys add NAME` on the server")
        if code == 429:
            return SandboxError(f"the swebox server at {self.url} is full: {detail}",
                                hint="retry later or raise its --max-sandboxes")
        if code in (400, 413, 422):
            return BadInput(f"{what}: {detail}")
        return SandboxError(f"{what}: {detail} (HTTP {code})")


def _retry_after(resp: httpx.Response) -> float:
    try:
        return min(max(float(resp.headers.get("Retry-After", "1")), 0.05), 60.0)
    except ValueError:
        return 1.0


def _read_timeout(timeout: float | None) -> float | None:
    return None if timeout is None else timeout + 60.0


class RemoteSandbox(Sandbox):
    def __init__(self, config: SandboxConfig, client: Client, info: dict[str, Any]) -> None:
        self.client = client
        self.id = str(info["id"])
        server_config = info.get("config") or {}
        self.config = config.model_copy(update={
            k: v for k, v in server_config.items() if k in ("image", "labels")})
        self.expires = float(info.get("expires") or 0)
        self._closed = False
        self._base = f"/v1/sandboxes/{self.id}"
        lifecycle.track(self)

    @classmethod
    def start(cls, config: SandboxConfig) -> RemoteSandbox:
        client = Client.of(config)
        body = config.model_dump(mode="json", include=set(START_FIELDS))
        info = client.call("POST", "/v1/sandboxes", json={"image": config.image, **body},
                           timeout=None, admit=True).json()
        return cls(config, client, info)

    def _call(self, method: str, path: str = "", **kw: Any) -> httpx.Response:
        if self._closed:
            raise SandboxError(f"sandbox {self.id[:12]} is closed")
        return self.client.call(method, self._base + path, **kw)

    def exec(self, cmd: Command, timeout: float | None = None, cwd: str | None = None,
             env: dict[str, str] | None = None) -> ExecResult:
        body = {"cmd": cmd if isinstance(cmd, str) else list(cmd), "timeout": timeout,
                "cwd": cwd, "env": env}
        resp = self._call("POST", "/exec", json=body, timeout=_read_timeout(timeout))
        return ExecResult.model_validate(resp.json())

    def shell(self, timeout: float | None = None) -> Session:
        params = {"timeout": timeout} if timeout else {}
        info = self._call("POST", "/sessions", params=params).json()
        return RemoteSession(self, str(info["session"]), int(info.get("pid") or 0),
                             str(info.get("cwd") or ""), timeout)

    def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self._call("PUT", "/file", params={"path": path, "mode": mode}, content=payload,
                   timeout=None)

    def read_file(self, path: str) -> bytes:
        return self._call("GET", "/file", params={"path": path}, timeout=None).content

    def upload(self, src: str | Path, dest: str) -> None:
        chunks = tar_stream(Path(src), "tree")  # raises BadInput at once if src is missing
        self._call("PUT", "/archive", params={"path": dest}, content=chunks, timeout=None)

    def download(self, src: str, dest: str | Path) -> None:
        if self._closed:
            raise SandboxError(f"sandbox {self.id[:12]} is closed")
        try:
            with self.client.http.stream("GET", f"{self._base}/archive", params={"path": src},
                                         timeout=httpx.Timeout(None, connect=10.0)) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self.client.error(resp, f"download {src}")
                extract_stream(resp.iter_bytes(), Path(dest))
        except httpx.HTTPError as e:
            raise SandboxError(f"download of {src} from {self.client.url} broke: {e}") from e

    def apply_patch(self, patch: str | bytes, cwd: str | None = None,
                    check: bool = False) -> PatchResult:
        text = patch.decode(errors="surrogateescape") if isinstance(patch, bytes) else patch
        if not text.strip() or check:  # the same checks and messages as a local backend
            return super().apply_patch(patch, cwd=cwd, check=check)
        resp = self._call("POST", "/apply_patch", json={"patch": text, "cwd": cwd},
                          timeout=None)
        return PatchResult.model_validate(resp.json())

    def diff(self, base: str | None = None, cwd: str | None = None) -> str:
        params = {k: v for k, v in (("base", base or self.config.base_commit), ("cwd", cwd))
                  if v}
        return self._call("GET", "/diff", params=params, timeout=None).text

    def snapshot(self) -> Snapshot:
        info = self._call("POST", "/snapshot", timeout=None).json()
        return RemoteSnapshot(self.config, self.client, str(info["snapshot"]), str(info["ref"]))

    def renew(self, lease: float | None = None) -> float:
        self.expires = float(self._call("POST", "/renew", json={"lease": lease}).json()["expires"])
        return self.expires

    def kill_processes(self) -> int:
        return int(self._call("POST", "/kill_processes").json()["killed"])

    def oom_killed(self) -> bool:
        return bool(self._call("GET", "/oom_killed").json()["oom_killed"])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        lifecycle.untrack(self)
        try:
            self.client.call("DELETE", self._base)
        except SweboxError as e:
            if "gone" not in str(e) and "no sandbox" not in str(e):
                raise

    def __repr__(self) -> str:
        return f"<RemoteSandbox {self.id[:12]} at {self.client.url} image={self.config.image}>"


class RemoteSession(Session):
    """A persistent shell living on the server. Commands go over one WebSocket per session
    (a frame each way; swebox.server.shell_ws), or one HTTP request each where the
    WebSocket cannot be opened."""

    def __init__(self, sandbox: RemoteSandbox, name: str, pid: int, cwd: str,
                 default_timeout: float | None) -> None:  # no super(): nothing local to frame
        self._sb, self._path = sandbox, f"/sessions/{name}"
        self._default_timeout = default_timeout
        self._ws: Any = None
        self._stack = contextlib.ExitStack()
        self._ws_failed = False
        self.closed = False
        self.pid, self.cwd = pid, cwd

    def _socket(self) -> Any:
        if self._ws is None and not self._ws_failed:
            try:
                from websockets.sync.client import connect

                url = self._sb.client.url.replace("http", "ws", 1) + self._sb._base + \
                    self._path + "/ws"
                auth = {k: v for k, v in self._sb.client.http.headers.items()
                        if k.lower() == "authorization"}
                self._ws = self._stack.enter_context(connect(
                    url, additional_headers=auth,
                    compression=None, max_size=None, open_timeout=10))
            except Exception:  # no websockets, a proxy in the way: plain HTTP per command
                self._ws_failed = True
        return self._ws

    def run(self, command: str, timeout: float | None = None,
            output_limit: int | None = None) -> ExecResult:
        if self.closed:
            raise errors.SessionClosed("this shell session is closed; open a new one "
                                       "with shell()")
        timeout = timeout if timeout is not None else self._default_timeout
        req = {"cmd": command, "timeout": timeout, "output_limit": output_limit}
        ws = self._socket()
        try:
            if ws is not None:
                data = self._over_ws(ws, req, _read_timeout(timeout))
            else:
                data = self._sb._call("POST", self._path + "/run", json=req,
                                      timeout=_read_timeout(timeout)).json()
        except errors.SessionClosed:
            self.closed = True
            self._stack.close()
            raise
        self.cwd = data.pop("cwd", self.cwd)
        return ExecResult.model_validate(data)

    def _over_ws(self, ws: Any, req: dict[str, Any], timeout: float | None) -> Any:
        try:
            ws.send(json.dumps(req))
            data = json.loads(ws.recv(timeout=timeout))
        except TimeoutError as e:
            raise errors.SandboxTimeout(f"the swebox server at {self._sb.client.url} did not "
                                        "answer a shell command in time") from e
        except Exception as e:  # the connection broke: the server went away
            self._stack.close()
            self._ws, self._ws_failed = None, True
            raise EngineUnavailable(f"the shell's connection to {self._sb.client.url} broke: "
                                    f"{e}", hint="is the server still running?") from e
        if isinstance(data, dict) and "error" in data:
            err = data["error"]
            kind = getattr(errors, str(err.get("kind")), None)
            if not (isinstance(kind, type) and issubclass(kind, SweboxError)):
                kind = SandboxError
            raise kind(str(err.get("message")), hint=err.get("hint"))
        return data

    def interrupt(self) -> None:
        if not self.closed:
            self._sb._call("POST", self._path + "/interrupt")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self._stack.close()
            try:
                self._sb._call("DELETE", self._path)
            except SweboxError:
                pass


class RemoteSnapshot(Snapshot):
    def __init__(self, config: SandboxConfig, client: Client, name: str, ref: str) -> None:
        super().__init__()
        self.config, self.client, self.name, self.ref = config, client, name, ref

    def start(self, n: int = 1, **overrides: object) -> list[Sandbox]:
        body = {"n": n, "overrides": {k: v.model_dump() if hasattr(v, "model_dump") else v
                                      for k, v in overrides.items()}}
        infos = self.client.call("POST", f"/v1/snapshots/{self.name}/start", json=body,
                                 timeout=None, admit=True).json()
        config = self.config.model_copy(update={k: v for k, v in overrides.items()
                                                if k in START_FIELDS})
        return [RemoteSandbox(config, self.client, info) for info in infos]

    def _delete(self) -> None:
        try:
            self.client.call("DELETE", f"/v1/snapshots/{self.name}")
        except SweboxError:
            pass  # the server removes its snapshots when it stops
