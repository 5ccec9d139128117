"""OpenHands V0 remote runtime on a plain image: OpenHands' own RemoteRuntime client (openhands-ai
1.6.0, in its venv) connects to a swebox server on loopback, runs commands, edits, uploads,
downloads and closes; the control and build endpoints answer the shapes the clients read; the
session key, the API key and ownership are enforced."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from swebox.server.app import Server
from swebox.server.keys import KeyStore
from swebox.server.openhands.observations import TIMEOUT_MESSAGE
from tests.conftest import BASE_IMAGE, _require, my_containers, serve_in_thread

VENV_PYTHON = Path(os.environ.get("SWEBOX_VENVS", "/opt/swebox/venvs")) / \
    "openhands-1.6.0" / "bin" / "python"
DRIVER = Path(__file__).with_name("openhands_v0_driver.py")
V0_COMMAND = ["/openhands/micromamba/bin/micromamba", "run", "-n", "openhands", "poetry", "run",
              "python", "-u", "-m", "openhands.runtime.action_execution_server", "60000",
              "--working-dir", "/workspace", "--plugins", "agent_skills", "jupyter",
              "--username", "root", "--user-id", "0"]

Served = tuple[str, dict[str, str]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    _require("docker")
    keys = KeyStore(tmp_path_factory.mktemp("keys") / "keys.json")
    tokens = {"alice": keys.add("alice"), "bob": keys.add("bob")}
    server = Server(keys, max_sandboxes=8, max_per_key=4, name=f"openhands-{os.getpid()}")
    url, stop = serve_in_thread(server)
    yield url, tokens
    stop()
    assert not server.boxes and my_containers() == []


def _start(c: httpx.Client, key: str, **body: Any) -> httpx.Response:
    payload = {"image": BASE_IMAGE, "command": V0_COMMAND, "working_dir": "/openhands/code/",
               "environment": {}, "session_id": "s-" + os.urandom(4).hex(),
               "resource_factor": 1, "runtime_class": "sysbox-runc", **body}
    return c.post("/start", json=payload, headers={"X-API-Key": key})


def test_the_real_openhands_client(served: Served) -> None:
    """RemoteRuntime.connect(), commands, files, upload/download, a timeout, close."""
    url, tokens = served
    if not VENV_PYTHON.exists():
        pytest.fail(f"{VENV_PYTHON} is missing: run `bash scripts/testbed.sh` (it builds the "
                    "openhands-ai 1.6.0 venv)", pytrace=False)
    env = {**os.environ, "SWEBOX_URL": url, "SWEBOX_KEY": tokens["alice"], "IMAGE": BASE_IMAGE,
           "NO_PROXY": "127.0.0.1", "LOG_LEVEL": "WARNING", "PYTHONPATH": ""}
    proc = subprocess.run([str(VENV_PYTHON), str(DRIVER)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    s = out["steps"]
    assert out["url"] == f"{url}/rt/{out['runtime_id']}"
    assert out["connect_seconds"] < 10, out["connect_seconds"]

    def ran(name: str) -> tuple[str, dict[str, Any]]:
        d = s[name]
        assert d["observation"] == "run", d
        return d["content"], d["extras"]["metadata"]

    content, meta = ran("pwd")
    assert content == "/tmp/d" and meta["exit_code"] == 0 and meta["working_dir"] == "/tmp/d"
    assert meta["username"] == "root" and meta["hostname"] and meta["pid"] == -1
    assert meta["suffix"] == "\n[The command completed with exit code 0.]"
    assert set(meta) == {"exit_code", "pid", "username", "hostname", "working_dir",
                         "py_interpreter_path", "prefix", "suffix"}
    assert s["pwd"]["agent_text"].startswith("/tmp/d\n[The command completed with exit code 0.]"
                                             "\n[Current working directory: /tmp/d]")
    assert ran("echo_env")[0] == "bar-baz"
    content, meta = ran("exit3")
    assert content == "out\nerr" and meta["exit_code"] == 3
    assert s["exit3"]["agent_text"].endswith("[Command finished with exit code 3]")
    assert ran("bg")[1]["pid"] > 0  # $! of the background job
    content, meta = ran("empty")
    assert content == "ERROR: No previous running command to retrieve logs from."
    assert meta["exit_code"] == -1 and s["empty"]["extras"]["command"] == ""
    assert s["hidden"]["extras"]["hidden"] is True and ran("hidden")[0] == "secret"
    content, meta = ran("timeout")  # killed at its timeout: bash says so after the output
    assert content.split("\n")[0] == "started" and "Killed" in content, content
    assert meta["exit_code"] == -1 and meta["pid"] == -1 and meta["working_dir"] is None
    assert meta["suffix"] == f"\n[The command timed out after 2.0 seconds. {TIMEOUT_MESSAGE}]"
    assert ran("after_timeout") == ("after", ran("after_timeout")[1])
    assert ran("after_timeout")[1]["exit_code"] == 0

    assert s["write"]["observation"] == "write"
    assert s["write"]["extras"] == {"path": "/workspace/a.txt"}
    assert s["read"]["content"] == "line1\nline2\n"
    assert s["read"]["extras"] == {"path": "/workspace/a.txt", "impl_source": "default"}
    # OpenHands' read_lines starts a range at most two lines before the end: both lines here
    assert s["read_range"]["content"] == "line1\nline2\n"
    assert s["read_missing"]["observation"] == "error"
    assert s["read_missing"]["content"] == ("File not found: /workspace/nope.txt. Your current "
                                            "working directory is /tmp/d.")
    edit = s["edit"]
    assert edit["observation"] == "edit" and edit["class"] == "FileEditObservation"
    assert edit["content"].startswith("The file /workspace/a.txt has been edited. Here's the "
                                      "result of running `cat -n` on a snippet of "
                                      "/workspace/a.txt:\n")
    assert "     2\tLINE2" in edit["content"]
    assert edit["extras"]["old_content"] == "line2" and edit["extras"]["new_content"] == "LINE2"
    assert edit["extras"]["impl_source"] == "oh_aci"
    assert edit["extras"]["diff"] == ("--- /workspace/a.txt\n+++ /workspace/a.txt\n@@ -2 +2 @@"
                                      "\n-line2\n+LINE2")
    assert s["edit_nomatch"]["content"] == ("ERROR:\nNo replacement was performed, old_str `zzz` "
                                            "did not appear verbatim in /workspace/a.txt.")
    assert s["create"]["content"] == "File created successfully at: /workspace/pkg/new.py"
    assert s["insert"]["content"].startswith("The file /workspace/pkg/new.py has been edited.")
    assert s["view"]["observation"] == "read" and s["view"]["extras"]["impl_source"] == "oh_aci"
    assert s["view"]["content"] == ("Here's the result of running `cat -n` on "
                                    "/workspace/pkg/new.py:\n     1\tx = 1\n     2\ty = 2\n"
                                    "     3\t\n")
    assert s["undo"]["content"].startswith("Last edit to /workspace/pkg/new.py undone")
    assert ran("cat")[0] == "line1\nLINE2\nx = 1"

    assert ran("uploaded")[0] == ("./one.txt\n./tree/sub/deep.txt\n./tree/top.txt\n"
                                  "uploaded one\ndeep")
    assert out["list_workspace"] == ["pkg/", "up/", "a.txt"]
    assert out["list_default"] == out["list_workspace"]
    assert out["list_missing"] == []
    assert out["zip"] == {"one.txt": "uploaded one\n", "tree/sub/deep.txt": "deep\n",
                          "tree/top.txt": "top\n"}
    assert s["ipython"]["observation"] == "error"
    assert "IPython is not available" in s["ipython"]["content"]
    assert s["browse"]["content"] == "Browser functionality is not supported or disabled."
    # close() sent /stop: the sandbox is gone
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.get(f"/runtime/{out['runtime_id']}", headers={"X-API-Key": tokens["alice"]})
        assert r.json()["pod_status"] == "failed" and r.json()["status"] == "stopped"
    assert my_containers() == []


def test_control_api_keys_and_skyrl(served: Served) -> None:
    url, tokens = served
    alice, bob = {"X-API-Key": tokens["alice"]}, {"X-API-Key": tokens["bob"]}
    with httpx.Client(base_url=url, timeout=60) as c:
        assert _start(c, "sbx_wrong").status_code == 401
        t0 = time.perf_counter()
        r = _start(c, tokens["alice"], session_id="sess-1", ignored_field=[1])
        assert r.status_code == 200, r.text
        rt = r.json()
        ready = c.get(f"/runtime/{rt['runtime_id']}", headers=alice).json()
        elapsed = time.perf_counter() - t0
        assert ready["pod_status"] == "ready" and ready["runtime_id"] == rt["runtime_id"]
        assert elapsed < 5, elapsed
        print(f"\n/start -> pod_status ready: {elapsed:.2f} s")
        assert rt["url"] == f"{url}/rt/{rt['runtime_id']}" and rt["work_hosts"] == {}
        rid, key = rt["runtime_id"], rt["session_api_key"]
        session = {**alice, "X-Session-API-Key": key}
        # the control API ignores an X-Session-API-Key; the action API needs the right one
        assert c.get("/sessions/sess-1", headers=session).json()["status"] == "running"
        assert c.get(f"{rt['url']}/alive").json() == {"status": "ok"}  # open, like OpenHands
        bad = c.post(f"{rt['url']}/execute_action", json={"action": {}},
                     headers={**alice, "X-Session-API-Key": "nope"})
        assert bad.status_code == 403 and bad.json() == {"detail": "Invalid API Key"}
        assert c.post(f"{rt['url']}/list_files", json={}).status_code == 403
        def act(action: str, timeout: float = 10, **args: Any) -> dict[str, Any]:
            body = {"action": {"action": action, "args": args, "timeout": timeout}}
            got = c.post(f"{rt['url']}/execute_action", json=body, headers=session)
            assert got.status_code == 200, got.text
            return dict(got.json())

        assert act("run", command="echo hi", blocking=False)["content"] == "hi"
        ctrl_c = act("run", command="C-c")["extras"]["metadata"]
        assert ctrl_c["exit_code"] == 130
        assert ctrl_c["suffix"] == "\n[The command completed with exit code 130. CTRL+C was sent.]"
        static = act("run", command="pwd; cd /; echo $0", is_static=True, cwd="/etc")
        assert static["content"] == "/etc\nbash" and static["extras"]["metadata"][
            "working_dir"] == "/etc"
        assert act("run", command="pwd")["content"] == "/workspace"  # the session stayed
        act("run", command="printf 'a\\0b' > /workspace/bin")
        assert act("read", path="/workspace/bin")["content"] == "ERROR_BINARY_FILE"
        assert act("read", path="/workspace")["content"] == (
            "Path is a directory: /workspace. You can only read files")
        assert act("frobnicate")["observation"] == "error"
        assert c.post(f"{rt['url']}/execute_action", json={"nope": 1},
                      headers=session).status_code == 422
        up = c.post(f"{rt['url']}/upload_file", params={"destination": "rel"},
                    files={"file": ("x.txt", b"x")}, headers=session)
        assert up.status_code == 400
        assert c.get(f"{rt['url']}/download_files", params={"path": "/nope"},
                     headers=session).status_code == 404
        # another key: the runtime does not exist for it
        assert c.get(f"/runtime/{rid}", headers=bob).status_code == 404
        assert c.get("/sessions/sess-1", headers=bob).status_code == 404
        assert c.get("/list", headers=bob).json() == {"runtimes": [], "total": 0}
        assert c.post("/stop", json={"runtime_id": rid}, headers=bob).status_code == 200
        assert c.get(f"/runtime/{rid}", headers=alice).json()["pod_status"] == "ready"
        listed = c.get("/list", headers=alice).json()
        assert listed["total"] == 1 and listed["runtimes"][0]["session_id"] == "sess-1"
        batch = c.get("/sessions/batch", params={"ids": ["sess-1", "nope"]}, headers=alice)
        assert [b["runtime_id"] for b in batch.json()] == [rid]
        # pause: 503 from the action API until resume
        assert c.post("/pause", json={"runtime_id": rid}, headers=alice).status_code == 200
        assert c.get("/sessions/sess-1", headers=alice).json()["status"] == "paused"
        assert c.get(f"{rt['url']}/alive").status_code == 503
        assert c.post("/resume", json={"runtime_id": rid}, headers=alice).status_code == 200
        assert c.get(f"{rt['url']}/alive").status_code == 200
        assert c.post("/stop", json={"runtime_id": rid}, headers=alice).status_code == 200
        assert c.get("/sessions/sess-1", headers=alice).json()["status"] == "stopped"
        assert c.get(f"{rt['url']}/alive").status_code == 404
        assert c.post("/stop", json={"runtime_id": "unknown"}, headers=alice).status_code == 200
        assert c.get("/runtime/unknown", headers=alice).status_code == 404
        assert c.get("/sessions/unknown", headers=alice).status_code == 404
        # SkyRL's fork (port 88888888 in its command) waits for "running"
        sky = [a if a != "60000" else "88888888" for a in V0_COMMAND]
        r = _start(c, tokens["bob"], command=sky)
        assert r.status_code == 200 and r.json()["pod_status"] == "running"
        assert c.get(f"/runtime/{r.json()['runtime_id']}", headers=bob).json()[
            "pod_status"] == "running"
        # ... and its FileEditObservation has no `diff` (an unknown field crashes a client)
        create = {"action": "edit", "args": {"path": "/workspace/x.py", "command": "create",
                                             "file_text": "x\n", "impl_source": "oh_aci"}}
        edit = c.post(f"{r.json()['url']}/execute_action", json={"action": create}, headers={
            "X-Session-API-Key": r.json()["session_api_key"]}).json()
        assert edit["observation"] == "edit" and "diff" not in edit["extras"]
        assert edit["content"] == "File created successfully at: /workspace/x.py"
        c.post("/stop", json={"runtime_id": r.json()["runtime_id"]}, headers=bob)
        # bad input: the field is named; an unknown image names itself and how to get it
        r = c.post("/start", json={"command": "x"}, headers=alice)
        assert r.status_code == 422 and "image" in r.text
        r = _start(c, tokens["alice"], image="swebox/no-such-image:v0",
                   image_pull_policy="Never")
        assert r.status_code == 404 and "swebox/no-such-image:v0" in r.json()["detail"]
        assert "docker pull" in r.json()["detail"]
    assert my_containers() == []


def _context(dockerfile: str) -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("./Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buf.getvalue()).decode()


def test_build_path_records_the_base_image(served: Served) -> None:
    """The calls OpenHands makes with runtime_container_image unset, shaped as its builder
    sends them: nothing is built, a tag stands for the FROM image."""
    url, tokens = served
    alice, bob = {"X-API-Key": tokens["alice"]}, {"X-API-Key": tokens["bob"]}
    with httpx.Client(base_url=url, timeout=60) as c:
        prefix = c.get("/registry_prefix", headers=alice).json()["registry_prefix"]
        repo = prefix.rstrip("/") + "/runtime"
        src, lock = f"{repo}:oh_v1.6.0_abc_def", f"{repo}:oh_v1.6.0_abc"
        r = c.get("/image_exists", params={"image": src}, headers=alice).json()
        assert r["exists"] is False and r["url"] == url
        r = c.get("/image_exists", params={"image": BASE_IMAGE}, headers=alice).json()
        assert r["exists"] is True and r["image"]["image_size_bytes"] > 0
        assert r["image"]["upload_time"]
        files = [("context", ("context.tar.gz", _context(
                    f"# syntax\nFROM --platform=linux/amd64 {BASE_IMAGE}\nRUN true\n"))),
                 ("target_image", (None, src)), ("tags", (None, lock))]
        r = c.post("/build", files=files, headers=alice)
        assert r.status_code == 200, r.text
        assert r.json()["url"] == url
        status = c.get("/build_status", params={"build_id": r.json()["build_id"]},
                       headers=alice).json()
        assert status == {"status": "SUCCESS", "image": src}
        assert c.get("/build_status", params={"build_id": r.json()["build_id"]},
                     headers=bob).status_code == 404
        assert c.get("/image_exists", params={"image": src}, headers=alice).json()["exists"]
        assert not c.get("/image_exists", params={"image": src}, headers=bob).json()["exists"]
        bad = c.post("/build", files=[("context", ("context.tar.gz", _context("RUN x\n"))),
                                      ("target_image", (None, src))], headers=alice)
        assert bad.status_code == 400 and "FROM" in bad.text
        r = _start(c, tokens["alice"], image=src)
        assert r.status_code == 200, r.text
        rt = r.json()
        assert rt["image"] == src
        probe = {"action": "run", "args": {"command": "cat /etc/debian_version"}, "timeout": 10}
        out = c.post(f"{rt['url']}/execute_action", json={"action": probe},
                     headers={"X-Session-API-Key": rt["session_api_key"]}).json()
        assert out["extras"]["metadata"]["exit_code"] == 0 and out["content"][:2] == "12"
        c.post("/stop", json={"runtime_id": rt["runtime_id"]}, headers=alice)
    assert my_containers() == []


class StandInV1:
    """The interface swebox.server.openhands.v1 offers control.py (a stand-in: the hook is
    what is tested here, not an agent server). Its "agent server" is healthy once start() ran
    and saw sandbox_options()'s env in the sandbox, and answers every proxied request with what
    it got (as v1.AgentServer, it gets the session key; the sandbox's environment does not)."""

    closed: ClassVar[list[str]] = []

    @staticmethod
    def is_agent_server_command(command: str | list[str]) -> bool:
        text = command if isinstance(command, str) else " ".join(command)
        return "openhands-agent-server" in text

    @staticmethod
    def sandbox_options() -> dict[str, Any]:
        return {"env": {"OH_STAND_IN": "1"}}

    class AgentServer:
        def __init__(self, sandbox: Any, session_api_key: str) -> None:
            self.sandbox, self.key, self.up = sandbox, session_api_key, False

        def start(self) -> None:
            time.sleep(0.3)
            got = self.sandbox.exec("printf '%s|%s' \"$OH_STAND_IN\" \"${SESSION_API_KEY-no}\"")
            self.up = got.output == "1|no"

        def healthy(self) -> bool:
            return self.up

        async def proxy(self, request: Any, path: str) -> Any:
            from fastapi.responses import JSONResponse

            return JSONResponse({"path": path, "method": request.method,
                                 "body": (await request.body()).decode()})

        def close(self) -> None:
            StandInV1.closed.append(self.key)


def test_v1_agent_server_hook(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """A V1 start (APIRemoteWorkspace's command, one string) is pending until the agent
    server is healthy, polled at /sessions/{sid}; /rt/{id}/... is proxied to it."""
    from swebox.server.openhands import control

    url, tokens = served
    monkeypatch.setenv("SWEBOX_OPENHANDS_V1_WARM", "0")  # no warm spares (test_openhands_v1)
    alice = {"X-API-Key": tokens["alice"]}
    body = {"image": BASE_IMAGE, "command": "/usr/local/bin/openhands-agent-server --port 60000",
            "working_dir": "/", "environment": {}, "session_id": "v1-sess",
            "run_as_user": 10001, "fs_group": 10001, "image_pull_policy": "IfNotPresent",
            "runtime_class": "sysbox-runc"}
    with httpx.Client(base_url=url, timeout=60) as c:
        monkeypatch.setattr(control, "v1_module", lambda: None)
        r = c.post("/start", json=body, headers=alice)
        assert r.status_code == 501 and "V1" in r.json()["detail"]
        monkeypatch.setattr(control, "v1_module", lambda: StandInV1)
        r = c.post("/start", json=body, headers=alice)
        assert r.status_code == 200, r.text
        rt = r.json()
        assert rt["pod_status"] == "pending"
        deadline = time.monotonic() + 20
        while c.get("/sessions/v1-sess", headers=alice).json()["pod_status"] != "ready":
            assert time.monotonic() < deadline, "the agent server never became healthy"
            time.sleep(0.1)
        got = c.post(f"{rt['url']}/api/bash/start_bash_command", content=b'{"command":"ls"}')
        assert got.json() == {"path": "api/bash/start_bash_command", "method": "POST",
                              "body": '{"command":"ls"}'}
        assert c.get(f"{rt['url']}/health").json()["path"] == "health"  # no key needed
        c.post("/stop", json={"runtime_id": rt["runtime_id"]}, headers=alice)
        assert StandInV1.closed == [rt["session_api_key"]]
        assert c.get(f"{rt['url']}/health").status_code == 404
    assert my_containers() == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
