"""The remote backend and the server's own API beyond the Sandbox contract (which the whole
tests/sandbox suite checks over the `remote` backend): bad input, dead sandboxes, admission
waits, a client killed with SIGKILL, a server restart, grading and whole episodes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swebox.agents import RemoteEnv, RewardOptions, ToolCall
from swebox.errors import BadInput, ImageNotFound, SandboxError
from swebox.sandbox import start_sandbox
from swebox.sandbox.engine import connect
from swebox.server.app import Server
from swebox.server.keys import KeyStore
from swebox.tasks.model import Task
from tests.conftest import BASE_IMAGE, _require, my_containers, serve_in_thread


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Server]]:
    """A server of its own: one sandbox per key, uploads up to 64 KiB."""
    _require("docker")
    keys = KeyStore(tmp_path_factory.mktemp("keys") / "keys.json")
    key = keys.add("small")
    server = Server(keys, max_sandboxes=8, max_per_key=1, name=f"small-{os.getpid()}")
    server.max_upload = 64 * 1024
    url, stop = serve_in_thread(server)
    yield url, key, server
    stop()
    assert my_containers() == []


def test_bad_input_answers(small: tuple[str, str, Server], tmp_path: Path) -> None:
    url, key, _ = small
    with start_sandbox(BASE_IMAGE, backend="remote", url=url, api_key=key, workdir="/tmp",
                       pull="never") as sb:
        with pytest.raises(BadInput, match="over the server's limit"):
            sb.write_file("/tmp/big", b"x" * 100_000)  # 413
        big = tmp_path / "tree"
        big.mkdir()
        (big / "blob").write_bytes(os.urandom(100_000))
        with pytest.raises(BadInput, match="over the server's limit"):
            sb.upload(big, "/tmp/tree")
        assert sb.exec("ls /tmp").stdout == ""  # nothing of either reached the sandbox
        h = {"X-API-Key": key}
        bad = httpx.post(f"{url}/v1/sandboxes/{sb.id}/exec", json={"timeout": 5}, headers=h)
        assert bad.status_code == 422 and "cmd" in bad.text  # names the missing field
        bad = httpx.post(f"{url}/v1/sandboxes/{sb.id}/exec", content=b"{nope", headers=h)
        assert bad.status_code == 422
    with pytest.raises(ImageNotFound, match=r"swebox/not-here:1 is not present.*docker pull"):
        start_sandbox("swebox/not-here:1", backend="remote", url=url, api_key=key,
                      pull="never")
    with pytest.raises(BadInput, match="refused the API key"):
        start_sandbox(BASE_IMAGE, backend="remote", url=url, api_key="sbx_wrong")
    with pytest.raises(Exception, match="cannot reach the swebox server"):
        start_sandbox(BASE_IMAGE, backend="remote", url="http://127.0.0.1:9", api_key=key)


def test_a_dead_sandbox_answers_410_with_why(small: tuple[str, str, Server]) -> None:
    url, key, _ = small
    sb = start_sandbox(BASE_IMAGE, backend="remote", url=url, api_key=key, pull="never",
                       workdir="/")
    connect("docker").api.remove_container(sb.id, force=True)  # killed from outside
    with pytest.raises(SandboxError, match="is gone: it stopped"):
        sb.exec("true")
    r = httpx.post(f"{url}/v1/sandboxes/{sb.id}/exec", json={"cmd": "true"},
                   headers={"X-API-Key": key})
    assert r.status_code == 410 and "gone" in r.json()["detail"]
    sb.close()  # closing what is already gone is fine


def test_admission_waits_for_room(small: tuple[str, str, Server]) -> None:
    url, key, server = small
    first = start_sandbox(BASE_IMAGE, backend="remote", url=url, api_key=key, pull="never")
    got: list[object] = []

    def second() -> None:
        got.append(start_sandbox(BASE_IMAGE, backend="remote", url=url, api_key=key,
                                 pull="never"))

    t = threading.Thread(target=second)
    refused = server.refused._value.get()  # type: ignore[attr-defined]
    t.start()
    deadline = time.monotonic() + 20
    while server.refused._value.get() == refused:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the second start was never refused"
        time.sleep(0.05)
    assert not got  # refused with 429, and waiting as Retry-After says
    first.close()
    t.join(timeout=60)
    assert len(got) == 1
    got[0].close()  # type: ignore[attr-defined]


CLIENT = """
import sys, time
from swebox.sandbox import start_sandbox
sb = start_sandbox(sys.argv[1], backend="remote", url=sys.argv[2], api_key=sys.argv[3],
                   pull="never", lease=4)
print(sb.id, flush=True)
time.sleep(600)
"""


def test_a_killed_client_loses_its_sandboxes_within_the_lease(
        small: tuple[str, str, Server]) -> None:
    url, key, server = small
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, BASE_IMAGE, url, key],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    sid = proc.stdout.readline().strip()
    assert sid in server.boxes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 4 + 20
    while sid in server.boxes or sid[:12] in " ".join(my_containers()):
        assert time.monotonic() < deadline, "the sandbox outlived its lease"
        time.sleep(0.5)
    r = httpx.post(f"{url}/v1/sandboxes/{sid}/exec", json={"cmd": "true"},
                   headers={"X-API-Key": key})
    assert r.status_code == 410 and "lease expired" in r.json()["detail"]


def test_a_restarted_server_collects_what_its_killed_run_left(tmp_path: Path) -> None:
    _require("docker")
    keys = KeyStore(tmp_path / "keys.json")
    key = keys.add("k")
    name = f"restart-{os.getpid()}"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "swebox.cli", "serve", "--port", str(port),
                             "--keys", str(keys.path), "--name", name],
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz")
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        sid = httpx.post(f"{url}/v1/sandboxes", json={"image": BASE_IMAGE, "pull": "never"},
                         headers={"X-API-Key": key}, timeout=60).json()["id"]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    api = connect("docker").api
    assert api.containers(filters={"id": sid})  # the killed server could not close it
    _, stop = serve_in_thread(Server(keys, name=name))
    try:
        assert not api.containers(all=True, filters={"id": sid})  # collected at start
    finally:
        stop()


def test_grade_and_a_whole_episode_remotely(small: tuple[str, str, Server],
                                           sample_tasks: dict[str, Task]) -> None:
    url, key, _ = small
    task = sample_tasks["paginate"]
    r = httpx.post(f"{url}/v1/grade", headers={"X-API-Key": key}, timeout=600,
                   json={"task": task.model_dump(mode="json"), "patch": task.gold_patch})
    assert r.status_code == 200, r.text
    assert r.json()["verdict"]["resolved"] is True
    wrong = httpx.post(f"{url}/v1/grade", headers={"X-API-Key": key}, timeout=600,
                       json={"task": task.model_dump(mode="json"), "patch": ""}).json()
    assert wrong["verdict"]["resolved"] is False and wrong["verdict"]["empty_patch"] is True
    with RemoteEnv(task, url=url, api_key=key) as env:
        obs = env.reset()
        assert task.problem_statement in obs.text
        env.step(ToolCall(name="str_replace_editor",
                          arguments={"command": "create", "path": "/tmp/fix.patch",
                                     "file_text": task.gold_patch}))
        text, _, done, _ = env.step(ToolCall(name="bash", arguments={
            "command": "git apply /tmp/fix.patch && rm /tmp/fix.patch && echo applied"}))
        assert "applied" in text and not done
        _, reward, done, info = env.step(ToolCall(name="submit", arguments={}))
        assert done and reward == 1.0 and info["verdict"]["resolved"] is True
    with RemoteEnv(task, url=url, api_key=key, reward=RewardOptions(grade=False)) as env:
        env.reset()
        assert env.finish("gave up")["exit_reason"] == "gave up"


def _doctor(url: str, key: str | None) -> tuple[int, list[dict[str, str]]]:
    import json

    env = {k: v for k, v in os.environ.items() if k != "SWEBOX_API_KEY"}
    if key is not None:
        env["SWEBOX_API_KEY"] = key
    done = subprocess.run([sys.executable, "-m", "swebox.cli", "doctor", "--server", url,
                           "--json"], capture_output=True, text=True, env=env, timeout=60)
    return done.returncode, json.loads(done.stdout)


def test_doctor_checks_a_server(small: tuple[str, str, Server]) -> None:
    from swebox import __version__

    url, key, _ = small
    rc, rows = _doctor(url, key)
    status = {r["check"]: r["status"] for r in rows}
    assert rc == 0 and set(status.values()) == {"ok"}, rows
    detail = {r["check"]: r["detail"] for r in rows}
    assert __version__ in detail["server: version"]
    assert "docker backend, 0 of 8" in detail["server: capacity"]
    rc, rows = _doctor(url, "sbx_wrong")
    assert rc == 4 and {r["check"]: r["status"] for r in rows}["server: auth"] == "FAIL"
    assert "refused" in {r["check"]: r["detail"] for r in rows}["server: auth"]
    rc, rows = _doctor(url, None)
    assert rc == 4 and "SWEBOX_API_KEY is not set" in rows[2]["detail"]
    rc, rows = _doctor("http://127.0.0.1:9", key)
    assert rc == 4 and rows[0]["status"] == "FAIL" and len(rows) == 1


def test_shell_over_http_and_the_websocket_refuses_a_wrong_key(
        small: tuple[str, str, Server]) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect as ws_connect

    from swebox.errors import SessionClosed

    url, key, _ = small
    with start_sandbox(BASE_IMAGE, backend="remote", url=url, api_key=key, pull="never",
                       workdir="/") as sb:
        sh = sb.shell()
        sh._ws_failed = True  # type: ignore[attr-defined]  # as without websockets
        assert sh.run("cd /tmp && X=7").ok and sh.run("echo $PWD $X").output == "/tmp 7\n"
        slow = sh.run("sleep 30", timeout=1)
        assert slow.timed_out and sh.run("echo alive").output == "alive\n"
        with pytest.raises(SessionClosed):
            sh.run("exit 3")
        ws = sb.shell()
        assert ws.run("echo over ws").output == "over ws\n"
        assert ws._ws is not None  # type: ignore[attr-defined]
        path = f"{url.replace('http', 'ws')}/v1/sandboxes/{sb.id}/sessions/x/ws"
        with pytest.raises(InvalidStatus, match="403"):
            ws_connect(path, additional_headers={"Authorization": "Bearer sbx_wrong"})
        with pytest.raises(SessionClosed):
            ws.run("exit 4")


def test_big_transfers_stream_with_flat_memory(small: tuple[str, str, Server],
                                               tmp_path: Path) -> None:
    """300 MB up and down through the remote backend: the client and the server (both in
    this process) never hold it in memory. The resident set is sampled while it runs."""
    url, key, server = small
    server.max_upload = 1024**3
    src = tmp_path / "up"
    src.mkdir()
    with open(src / "big.bin", "wb") as f:
        for _ in range(300):
            f.write(os.urandom(1024 * 1024))

    def rss() -> int:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")) * 1024

    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            samples.append(rss())

    base = rss()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with start_sandbox(BASE_IMAGE, backend="remote", url=url, api_key=key, pull="never",
                           workdir="/") as sb:
            sb.upload(src, "/data/up")
            assert sb.exec("stat -c %s /data/up/big.bin").stdout.strip() == str(300 * 1024**2)
            sb.download("/data/up", tmp_path / "down")
    finally:
        done.set()
        sampler.join()
    assert (tmp_path / "down" / "big.bin").stat().st_size == 300 * 1024**2
    with open(src / "big.bin", "rb") as a, open(tmp_path / "down" / "big.bin", "rb") as b:
        while block := a.read(1 << 22):
            assert block == b.read(1 << 22)
    grew = max(samples) - base
    assert len(samples) > 20 and grew < 100 * 1024**2, f"RSS grew by {grew >> 20} MiB"
