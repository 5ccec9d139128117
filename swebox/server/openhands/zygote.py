"""Agent servers forked from a pre-loaded one: ready in about half a second instead of 8-9 s.

An agent server spends 7-8 s of CPU importing itself before it serves. `zygote_main.py`, run on
this host by the bundle's own Python, pays that once per swebox process, and then forks a twin
of a *reference* into each sandbox: a process swebox started there with an ordinary exec
(`REFERENCE`), so it has exactly what the sandbox gives its commands. The fork joins the
reference's namespaces, root and cgroups, copies its rlimits, seccomp filters, capabilities,
user and environment, is checked from the host to match it, and only then runs the agent server
(zygote_main.py says how). If anything fails or differs, the agent server is launched with an
exec as before, a few seconds slower and no less safe; the log says why.

One zygote per bundle serves every server of this process; it is started on the first V1 start
(which waits for it: about as long as one exec'd agent server takes) or with the server
(`v1_zygote=eager`, what `swebox serve` does), and ends with the process (it watches a pipe).
It needs root on this host, as the engine's own exec does; `v1_zygote=0` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from swebox.errors import SandboxError

log = logging.getLogger(__name__)
MAIN = str(Path(__file__).with_name("zygote_main.py"))
READY_TIMEOUT = 120.0  # loading ~4,900 modules on a busy machine
SPAWN_TIMEOUT = 30.0

# Run in the sandbox by the bundle's Python (-I -S): makes the run directory, forks a process
# that leaves the exec's session and streams and waits (at most a minute) to be copied and
# killed, and prints that process's pid in the sandbox.
REFERENCE = r"""
import os, signal, sys
d = sys.argv[1]
os.makedirs(d, mode=0o700, exist_ok=True)
os.chmod(d, 0o700)
r, w = os.pipe()
pid = os.fork()
if pid:
    os.close(w)
    os.read(r, 1)
    print(pid, flush=True)
    os._exit(0)
os.close(r)
os.setsid()
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
signal.alarm(60)
os.write(w, b".")
os.close(w)
while True:
    signal.pause()
"""


class Zygote:
    """The zygote process of one bundle, and the requests to it."""

    def __init__(self, python: str, bundle: str, env: dict[str, str]) -> None:
        self.dir = tempfile.mkdtemp(prefix="swebox-zygote-")  # 0700: the socket's only guard
        self.socket = os.path.join(self.dir, "zygote.sock")
        home = os.path.join(self.dir, "home")  # whatever the agent server writes while loading
        os.mkdir(home)
        self.log_path = os.path.join(self.dir, "log")
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
                "OPENHANDS_SUPPRESS_BANNER": "1", "LOG_LEVEL": "WARNING", **env}
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                [python, "-I", "-u", MAIN, self.socket, bundle], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=logf, env=full, cwd=self.dir,
                start_new_session=True)
        self.ready = threading.Event()
        self.failure: str | None = None
        threading.Thread(target=self._watch, name="swebox-zygote", daemon=True).start()

    def _watch(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(b"ready "):
                log.info("agent-server zygote %s", line.decode(errors="replace").strip())
                self.ready.set()
        self.failure = f"the agent-server zygote exited: {self._tail()}"
        self.ready.set()  # nobody waits for a dead one

    def _tail(self) -> str:
        try:
            lines = Path(self.log_path).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no output"
        return " | ".join(ln.strip() for ln in lines[-3:] if ln.strip()) or "no output"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and self.failure is None

    def wait(self, timeout: float = READY_TIMEOUT) -> bool:
        """Whether the zygote serves (waiting for its start-up at most `timeout` s)."""
        return self.ready.wait(timeout) and self.alive

    def spawn(self, ref: int, run_dir: str, port: int, args: list[str], launcher: str) -> int:
        """Fork the agent server as the twin of host process `ref`; its host pid."""
        request = {"ref": ref, "run_dir": run_dir, "port": port, "args": args,
                   "launcher": launcher}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(SPAWN_TIMEOUT)
                s.connect(self.socket)
                s.sendall(json.dumps(request).encode() + b"\n")
                answer = s.makefile("rb").readline().decode(errors="replace").strip()
        except OSError as e:
            raise SandboxError(f"the agent-server zygote did not answer: {e}") from e
        word, _, rest = answer.partition(" ")
        if word != "ok" or not rest.isdigit():
            raise SandboxError(f"the agent-server zygote could not fork: {rest or answer}")
        return int(rest)

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(1)
        except subprocess.TimeoutExpired:  # still loading (it reads its input once ready):
            with contextlib.suppress(OSError):  # its group, the throwaway learner included
                os.killpg(self.proc.pid, signal.SIGKILL)  # (forked servers have sessions
            self.proc.wait()  # of their own)
        shutil.rmtree(self.dir, ignore_errors=True)


_lock = threading.Lock()
_zygotes: dict[str, Zygote] = {}


def shared(python: str, bundle: str, env: dict[str, str]) -> Zygote:
    """This process's zygote of `bundle`, started if there is none (or it died)."""
    with _lock:
        z = _zygotes.get(bundle)
        if z is None or not (z.alive or not z.ready.is_set()):
            if z is not None:
                z.close()
            z = _zygotes[bundle] = Zygote(python, bundle, env)
            atexit.register(z.close)
        return z


def host_pid(init_pid: int, inner: int) -> int:
    """The host pid of process `inner` of the pid namespace whose init is host pid `init_pid`."""
    ns = os.stat(f"/proc/{init_pid}/ns/pid").st_ino
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                nspid = next((ln.split()[1:] for ln in f if ln.startswith("NSpid:")), [])
            if len(nspid) >= 2 and int(nspid[-1]) == inner and \
                    os.stat(f"/proc/{name}/ns/pid").st_ino == ns:
                return int(name)
        except (OSError, ValueError):
            continue
    raise SandboxError(f"process {inner} of the sandbox is not to be found on this host")


def launch(agent: Any, python: str, env: dict[str, str], launcher: str, mode: str) -> bool:
    """Start `agent` (a v1.AgentServer) forked from the zygote; False when it was not (no
    zygote, or a failure, which is logged), and the caller launches it with an exec."""
    from swebox.server.openhands.v1 import AGENT_ENV, RUN_DIR, bundle_dir, init_pid

    if mode in ("0", "off", "false", "no") or os.geteuid() != 0:
        return False
    # It loads with the settings the agent server reads at import, none of a sandbox's own.
    z = shared(python, str(bundle_dir().resolve()), AGENT_ENV)
    if not z.wait():
        log.warning("%s; launching agent servers with an exec", z.failure or "no zygote")
        return False
    sandbox = agent.sandbox
    res = sandbox.exec([python, "-I", "-S", "-c", REFERENCE, RUN_DIR], timeout=30, cwd="/",
                       env=env)
    inner = res.stdout.strip()
    if not res.ok or not inner.isdigit():
        log.warning("no reference process in %s (%s); launching the agent server with an exec",
                    sandbox.id, res.output.strip()[:200])
        return False
    try:
        ref = host_pid(init_pid(sandbox), int(inner))
        agent.pid = z.spawn(ref, RUN_DIR, agent.port, agent.args, launcher)
    except SandboxError as e:  # (the reference ends by itself within a minute)
        log.warning("%s in %s; launching the agent server with an exec", e, sandbox.id)
        return False
    return True
