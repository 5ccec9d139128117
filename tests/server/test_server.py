"""The runtime server on loopback: keys stored hashed, 401 without the right key, a key sees
only its sandboxes, admission with 429 + Retry-After, start/exec/close, health and metrics."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swebox.errors import SweboxError
from swebox.server.app import Server, check_auth_choice, create_app
from swebox.server.keys import KeyStore
from tests.conftest import BASE_IMAGE, _require, my_containers


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    import uvicorn

    _require("docker")
    keys = KeyStore(tmp_path_factory.mktemp("keys") / "keys.json")
    tokens = {"alice": keys.add("alice"), "bob": keys.add("bob")}
    server = Server(keys, max_sandboxes=3, max_per_key=2)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(create_app(server), log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", tokens
    uv.should_exit = True
    thread.join(timeout=30)


def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "k.json")
    key = store.add("ci")
    text = (tmp_path / "k.json").read_text()
    assert key.startswith("sbx_") and key not in text and "ci" in text
    assert (tmp_path / "k.json").stat().st_mode & 0o077 == 0
    assert store.verify(key) == "ci" and store.verify(key + "x") is None
    assert store.verify(None) is None and store.verify("") is None
    with pytest.raises(SweboxError, match="exists"):
        store.add("ci")
    store.remove("ci")
    assert KeyStore(tmp_path / "k.json").verify(key) is None


def test_disable_auth_is_refused_off_loopback() -> None:
    check_auth_choice("127.0.0.1", True, False)
    check_auth_choice("0.0.0.0", False, False)
    check_auth_choice("0.0.0.0", True, True)  # forced
    with pytest.raises(SweboxError, match="anyone who reaches"):
        check_auth_choice("0.0.0.0", True, False)


def test_auth_ownership_admission_and_a_sandbox(served: tuple[str, dict[str, str]]) -> None:
    url, tokens = served
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    bob = {"X-API-Key": tokens["bob"]}
    with httpx.Client(base_url=url, timeout=120) as c:
        assert c.get("/healthz").json()["ok"] is True
        assert c.get("/readyz").json()["ready"] is True
        body = {"image": BASE_IMAGE, "workdir": "/tmp"}
        assert c.post("/v1/sandboxes", json=body).status_code == 401
        assert c.post("/v1/sandboxes", json=body,
                      headers={"Authorization": "Bearer sbx_wrong"}).status_code == 401
        r = c.post("/v1/sandboxes", json=body, headers=alice)
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        out = c.post(f"/v1/sandboxes/{sid}/exec", json={"cmd": "echo hi; exit 3"},
                     headers=alice).json()
        assert out["exit_code"] == 3 and out["stdout"] == "hi\n"
        slow = c.post(f"/v1/sandboxes/{sid}/exec", json={"cmd": "sleep 30", "timeout": 1},
                      headers=alice).json()
        assert slow["timed_out"] and slow["exit_code"] == 124
        # bob cannot see, use or close alice's sandbox: it does not exist for him
        assert c.post(f"/v1/sandboxes/{sid}/exec", json={"cmd": "true"},
                      headers=bob).status_code == 404
        assert c.delete(f"/v1/sandboxes/{sid}", headers=bob).status_code == 404
        assert c.get("/v1/sandboxes", headers=bob).json() == []
        # admission: alice may hold 2
        second = c.post("/v1/sandboxes", json=body, headers=alice)
        assert second.status_code == 201
        third = c.post("/v1/sandboxes", json=body, headers=alice)
        assert third.status_code == 429 and third.headers["Retry-After"] == "2"
        assert len(c.get("/v1/sandboxes", headers=alice).json()) == 2
        metrics = c.get("/metrics").text
        assert "swebox_sandboxes_live 2.0" in metrics
        assert "swebox_admission_refused_total 1.0" in metrics
        for s in (sid, second.json()["id"]):
            assert c.delete(f"/v1/sandboxes/{s}", headers=alice).status_code == 204
        gone = c.post(f"/v1/sandboxes/{sid}/exec", json={"cmd": "true"}, headers=alice)
        assert gone.status_code == 410 and "closed by its owner" in gone.json()["detail"]
        assert c.post(f"/v1/sandboxes/{sid}/exec", json={"cmd": "true"},
                      headers=bob).status_code == 404  # bob still learns nothing
    assert my_containers() == []


def test_cli_keys_and_refusals(tmp_path: Path) -> None:
    import subprocess
    import sys

    def swebox(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "swebox.cli", *args], capture_output=True,
                              text=True, timeout=60)

    keys = str(tmp_path / "keys.json")
    added = swebox("serve", "keys", "add", "ci", "--keys", keys)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("sbx_") and KeyStore(keys).verify(key) == "ci"
    assert swebox("serve", "keys", "list", "--keys", keys).stdout.split() == ["ci"]
    again = swebox("serve", "keys", "add", "ci", "--keys", keys)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
    refused = swebox("serve", "--host", "0.0.0.0", "--disable-auth", "--keys", keys)
    assert refused.returncode != 0 and "anyone who reaches" in refused.stderr
    empty = swebox("serve", "--keys", str(tmp_path / "none.json"))
    assert empty.returncode == 2 and "no API keys" in empty.stderr
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = swebox("serve", "--keys", keys, "--port", str(held.getsockname()[1]))
    assert taken.returncode == 2 and "cannot listen on 127.0.0.1:" in taken.stderr
    assert "serving" not in taken.stderr and "Traceback" not in taken.stderr
    assert swebox("serve", "keys", "remove", "ci", "--keys", keys).returncode == 0
    assert KeyStore(keys).names() == []


def test_keys_added_or_removed_while_serving_count_at_once(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "k.json")
    first = store.add("first")
    served_view = KeyStore(tmp_path / "k.json")  # what a running server holds
    assert served_view.verify(first) == "first"
    second = KeyStore(tmp_path / "k.json").add("second")  # `swebox serve keys add` meanwhile
    assert served_view.verify(second) == "second"
    KeyStore(tmp_path / "k.json").remove("first")  # revoked
    assert served_view.verify(first) is None and served_view.verify(second) == "second"
