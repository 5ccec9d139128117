"""V1 agent servers forked from the zygote (swebox/server/openhands/zygote.py) into a sandbox.

What must hold for a fork to stand in for an exec: seen from the host, the forked agent server
has exactly what a command the sandbox's own exec started has (credentials, capability sets,
no_new_privs, seccomp filters, every namespace, root, cgroups, rlimits), holds no descriptor of
the host's (the zygote's socket, the host's /proc), serves, and goes with the sandbox. The
zygote itself never holds a session key; it refuses a reference that is not the bundle's
interpreter; and with forking off the agent server is exec'd as before.
"""

from __future__ import annotations

import os
import re
import resource
import time
from collections.abc import Iterator

import httpx
import pytest

from swebox.errors import SandboxError
from swebox.sandbox import Sandbox, start_sandbox
from swebox.server.openhands import zygote
from swebox.server.openhands.v1 import (
    AGENT_ENV,
    AgentServer,
    bundle_dir,
    bundle_python,
    init_pid,
    sandbox_options,
)
from tests.conftest import BASE_IMAGE, _require, image_for
from tests.server.test_openhands_v1 import _require_bundle, run_bash, wait_healthy

COMPARED = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
            "NoNewPrivs", "Seccomp", "Seccomp_filters")
NAMESPACES = ("user", "cgroup", "ipc", "uts", "net", "pid", "mnt")
RLIMITS = [getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")]


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        pairs = (line.split(":", 1) for line in f if ":" in line)
        return {k: v.strip() for k, v in pairs}


def _identity(pid: int) -> dict[str, object]:
    """Everything a command's confinement is made of, as this host sees it."""
    st = _status(pid)
    root = os.stat(f"/proc/{pid}/root")
    with open(f"/proc/{pid}/cgroup") as f:
        cgroups = f.read()
    return {
        **{k: st.get(k) for k in COMPARED},
        **{f"ns:{ns}": os.stat(f"/proc/{pid}/ns/{ns}").st_ino for ns in NAMESPACES},
        "root": (root.st_dev, root.st_ino), "cgroups": cgroups,
        **{f"rlimit:{r}": resource.prlimit(pid, r) for r in RLIMITS},
    }


def _exec_twin(sb: Sandbox) -> int:
    """The host pid of a command the sandbox's own exec started (a `sleep` left running)."""
    res = sb.exec(["sh", "-c", "sleep 120 >/dev/null 2>&1 </dev/null & echo $!"], timeout=30)
    assert res.ok, res.output
    return zygote.host_pid(init_pid(sb), int(res.stdout.strip()))


def _memory_has(pid: int, needle: bytes) -> tuple[bool, int]:
    """Whether `needle` is in the writable memory of process `pid`, and how much was read."""
    found, scanned = False, 0
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) rw", line)
            if not m:
                continue
            try:
                mem.seek(int(m[1], 16))
                data = mem.read(int(m[2], 16) - int(m[1], 16))
            except OSError:
                continue
            scanned += len(data)
            found = found or needle in data
    return found, scanned


def _shared() -> zygote.Zygote:
    z = zygote.shared(bundle_python(), str(bundle_dir().resolve()), AGENT_ENV)
    assert z.wait(), z.failure
    return z


@pytest.fixture
def root_only() -> Iterator[None]:
    if os.geteuid() != 0:
        pytest.skip("the zygote forks into sandboxes as root only")
    _require_bundle()
    yield


@pytest.mark.parametrize("backend", ["docker", "podman", "bwrap"])
def test_a_forked_agent_server_is_the_twin_of_an_exec(backend: str, root_only: None) -> None:
    _require(backend)
    _shared()
    with start_sandbox(image_for(backend, BASE_IMAGE), backend=backend, workdir="/",
                       pull="never", **sandbox_options()) as sb:  # type: ignore[arg-type]
        agent = AgentServer(sb, "zygote-test-key")
        agent.start()
        assert agent.launched_by == "fork" and agent.pid, agent.launched_by
        took = wait_healthy(agent)
        print(f"{backend}: forked agent server healthy {took:.2f}s after its launch")
        twin = _exec_twin(sb)
        mine, theirs = _identity(agent.pid), _identity(twin)
        assert {k: v for k, v in mine.items() if theirs[k] != v} == {}
        # Nothing of the host's is held open: not the zygote's socket or directory, not the
        # host's /proc (the sandbox's own /proc is another mount).
        host_proc = os.stat("/proc")
        for fd in os.listdir(f"/proc/{agent.pid}/fd"):
            link = os.readlink(f"/proc/{agent.pid}/fd/{fd}")
            assert "swebox-zygote" not in link, link
            try:
                st = os.stat(f"/proc/{agent.pid}/fd/{fd}")
            except OSError:
                continue
            assert (st.st_dev, st.st_ino) != (host_proc.st_dev, host_proc.st_ino), link
        with httpx.Client(transport=httpx.HTTPTransport(uds=agent.socket_path),
                          base_url="http://agent", timeout=60) as c:
            res = run_bash(c, "echo key=${SESSION_API_KEY:-none} in $(pwd); id -u",
                           key="zygote-test-key")
            assert res == {"exit_code": 0, "stdout": "key=none in /\n0\n", "stderr": ""}
            assert c.get("/api/bash/bash_events/search").status_code == 401  # key enforced
        agent.close()
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{agent.pid}"):  # gone with its sandbox (and reaped)
        assert time.monotonic() < deadline, f"the agent server {agent.pid} outlived its sandbox"
        time.sleep(0.1)


def test_the_zygote_never_holds_a_session_key(root_only: None) -> None:
    """Requests (and the reference's environment, with the key) are read by the forked child
    only: the zygote's memory, which every later fork inherits, never has a key in it."""
    _require("docker")
    z = _shared()
    key = "k3y-" + os.urandom(12).hex()
    with start_sandbox(BASE_IMAGE, backend="docker", workdir="/", pull="never",
                       **sandbox_options()) as sb:  # type: ignore[arg-type]
        agent = AgentServer(sb, key)
        agent.start()
        assert agent.launched_by == "fork"
        wait_healthy(agent)
        # The same search finds the key in the agent server (where it must be).
        assert _memory_has(agent.pid, key.encode())[0]
        found, scanned = _memory_has(z.proc.pid, key.encode())
        assert scanned > 50 << 20, scanned  # the zygote's heap was read
        assert not found, "the session key is in the zygote's memory"
        agent.close()


def test_the_zygote_refuses_a_reference_that_is_not_the_bundle(root_only: None) -> None:
    z = _shared()
    with pytest.raises(SandboxError, match="not the bundle's interpreter"):
        z.spawn(os.getpid(), "/tmp/nowhere", 60000, [], "raise SystemExit(3)")
    with pytest.raises(SandboxError, match="could not fork"):
        z.spawn(2**22 + 12345, "/tmp/nowhere", 60000, [], "raise SystemExit(3)")


def test_with_forking_off_the_agent_server_is_execd(root_only: None) -> None:
    _require("docker")
    with start_sandbox(BASE_IMAGE, backend="docker", workdir="/", pull="never",
                       **sandbox_options()) as sb:  # type: ignore[arg-type]
        agent = AgentServer(sb, "exec-key", fork="0")
        agent.start()
        assert agent.launched_by == "exec" and agent.pid is None
        wait_healthy(agent)
        with httpx.Client(transport=httpx.HTTPTransport(uds=agent.socket_path),
                          base_url="http://agent", timeout=60) as c:
            res = run_bash(c, "echo launched by exec", key="exec-key")
            assert res == {"exit_code": 0, "stdout": "launched by exec\n", "stderr": ""}
        agent.close()
