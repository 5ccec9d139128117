"""The agent-server zygote: run on the host by the bundle's own Python (`zygote.py` starts it).

Not imported by swebox: it runs under the agent-server bundle's interpreter, which has no swebox,
so it uses the standard library only.

It imports the agent server once (about 4,900 modules, 7-8 s of CPU), then forks a ready process
into each sandbox that needs one, which serves in about 0.5 s instead of 8-9 s. The modules to
load are learned at start-up: a throwaway child imports the app and runs its start-up (in a
private temporary HOME), and reports what that loaded. The app module itself
(`openhands.agent_server.api`) is never loaded here: it builds its configuration (the session
key among it) from the environment when imported, so each forked server imports it with its own.

A fork is given a *reference*: a process that swebox started in the sandbox with an ordinary
exec, so it has exactly what the sandbox gives its commands. The fork copies all of it before
it runs anything: the reference's cgroups (every hierarchy), its namespaces and root, rlimits,
oom_score_adj, seccomp filters (read with PTRACE_SECCOMP_GET_FILTER), capability sets, user,
groups, no_new_privs and environment. It then checks from the host that its own /proc/<pid>
shows the same as the reference's (credentials, capabilities, seccomp, no_new_privs, every
namespace, cgroups, rlimits) and only then runs the agent server; anything different is an
error, and swebox falls back to launching the agent server with an exec. An LSM profile
(AppArmor, SELinux) cannot be copied this way: a reference that has one is refused.

Protocol, on the unix socket given as argv[1]: one JSON line in, one line out, "ok <host pid>"
or "err <why>". The zygote forks at once on each connection and never reads a request itself,
so no request (nor its environment, which holds a session key) is ever in memory it forks
later. It ends when its standard input closes (its owner is gone).
"""

import ctypes
import gc
import importlib
import json
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import traceback
from typing import IO, Any, NoReturn

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_SECCOMP_GET_FILTER = 17, 0x4206, 0x4207, \
    0x420C
PR_SET_KEEPCAPS, PR_SET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = \
    8, 22, 24, 38, 47
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2
NAMESPACES = ("user", "cgroup", "ipc", "uts", "net", "pid", "mnt")  # user first: it grants
# the capabilities the others need
COMPARED = ("Umask", "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
            "NoNewPrivs", "Seccomp", "Seccomp_filters")
RLIMITS = [getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")]
APP = "openhands.agent_server.api"
# The agent server's own modules build its state as they load: its configuration (with the
# session key) from the environment, a conversation service on it, its start time. None of
# them is loaded here; each fork loads them (about 0.3 s) with its own environment.
SERVER = "openhands.agent_server"


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("eff", ctypes.c_uint32), ("prm", ctypes.c_uint32), ("inh", ctypes.c_uint32)]


def check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror + (f": {e.filename}" if e.filename else "")
    return str(e) or type(e).__name__


# -- reading the reference (on the host) -----------------------------------------------------
# The host's /proc, opened before the fork enters the sandbox's mount namespace (where "/proc"
# is the sandbox's): what it checks afterwards, it reads through this.
PROC = -1


def proc(pid: int | str, name: str, mode: str = "r") -> IO[Any]:
    flags = os.O_WRONLY if "w" in mode else os.O_RDONLY
    return open(os.open(f"{pid}/{name}", flags, dir_fd=PROC), mode)


def status(pid: int) -> dict[str, str]:
    out = {}
    with proc(pid, "status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def ns_ids(pid: int) -> dict[str, tuple[int, int]]:
    out = {}
    for ns in NAMESPACES:
        st = os.stat(f"{pid}/ns/{ns}", dir_fd=PROC)
        out[ns] = (st.st_dev, st.st_ino)
    return out


def cgroup_procs(text: str) -> list[str]:
    """The host paths of the cgroup.procs files of the cgroups in `text` (a /proc/<pid>/cgroup),
    one per hierarchy."""
    mounts = []  # (kind, options, root, mount point)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] in ("cgroup", "cgroup2"):
                mounts.append((rfields[0], set(rfields[2].split(",")), fields[3], fields[4]))
    out = []
    for line in text.splitlines():
        if line:
            _, controllers, path = line.split(":", 2)
            if controllers:
                want = set(controllers.split(","))
                found = [m for m in mounts if m[0] == "cgroup" and want <= m[1]]
            else:
                found = [m for m in mounts if m[0] == "cgroup2"]
            if not found:
                continue  # a hierarchy this host has not mounted: nothing to join
            _, _, root, point = found[0]
            if root != "/" and path.startswith(root):
                path = path[len(root):] or "/"
            out.append(os.path.join(point, path.lstrip("/"), "cgroup.procs"))
    return out


def seccomp_filters(pid: int, count: int) -> list[Any]:
    """The seccomp filters of `pid`, oldest first (ptrace numbers them newest first)."""
    if count == 0:
        return []
    check(libc.ptrace(PTRACE_SEIZE, pid, None, None), "ptrace the reference")
    try:
        check(libc.ptrace(PTRACE_INTERRUPT, pid, None, None), "stop the reference")
        os.waitpid(pid, 0x40000000)  # __WALL: the reference is not our child
        progs = []
        for i in range(count):
            n = libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, i, None)
            if n <= 0:
                check(-1, "read the reference's seccomp filter")
            buf = (SockFilter * n)()
            if libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, i, ctypes.addressof(buf)) != n:
                check(-1, "read the reference's seccomp filter")
            progs.append(buf)
        return progs[::-1]
    finally:
        libc.ptrace(PTRACE_DETACH, pid, None, None)


def read_reference(pid: int, bundle: str) -> dict[str, Any]:
    exe = os.readlink(f"{pid}/exe", dir_fd=PROC)
    if not exe.startswith(bundle + "/"):
        raise OSError(0, f"the reference runs {exe}, not the bundle's interpreter")
    try:
        with proc(pid, "attr/current") as f:
            label = f.read().strip("\0\n ")
    except OSError:
        label = ""
    if label and label != "unconfined":
        raise OSError(0, f"the sandbox has an LSM profile ({label}), which a fork cannot copy")
    st = status(pid)
    with proc(pid, "environ", "rb") as f:
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    with proc(pid, "oom_score_adj") as f:
        oom = f.read().strip()
    with proc(pid, "cgroup") as f:
        cgroups = f.read()
    with open("/proc/sys/kernel/cap_last_cap") as f:
        cap_last = int(f.read())
    return {
        "status": st, "env": env, "oom": oom, "cap_last": cap_last, "ns": ns_ids(pid),
        "cgroups": cgroup_procs(cgroups), "cgroup_text": cgroups,
        "rlimits": {r: resource.prlimit(pid, r) for r in RLIMITS},
        "filters": seccomp_filters(pid, int(st.get("Seccomp_filters", "0") or 0)
                                   if st.get("Seccomp") == "2" else 0),
    }


# -- becoming the reference (in the fork) ----------------------------------------------------
def ids(line: str) -> list[int]:
    return [int(x) for x in line.split()]


def capset(eff: int, prm: int, inh: int) -> None:
    hdr, data = CapHeader(0x20080522, 0), (CapData * 2)()
    for i in (0, 1):
        data[i].eff, data[i].prm, data[i].inh = ((eff >> 32 * i) & 0xFFFFFFFF,
                                                 (prm >> 32 * i) & 0xFFFFFFFF,
                                                 (inh >> 32 * i) & 0xFFFFFFFF)
    check(libc.capset(ctypes.byref(hdr), data), "capset")


def become(ref: dict[str, Any]) -> None:
    """Take the reference's umask, seccomp filters, capabilities, user and no_new_privs (its
    namespaces, root and cgroups are joined already, its rlimits and oom_score_adj set)."""
    st = ref["status"]
    os.umask(int(st["Umask"], 8))
    for prog in ref["filters"]:  # while CAP_SYS_ADMIN allows it without no_new_privs
        fprog = SockFprog(len(prog), ctypes.cast(prog, ctypes.POINTER(SockFilter)))
        check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0),
              "install a seccomp filter")
    bnd = int(st["CapBnd"], 16)
    for cap in range(ref["cap_last"] + 1):
        if not bnd >> cap & 1:
            check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop a capability")
    check(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "keep capabilities")
    os.setgroups(ids(st["Groups"]))
    os.setresgid(*ids(st["Gid"])[:3])
    os.setresuid(*ids(st["Uid"])[:3])
    capset(int(st["CapEff"], 16), int(st["CapPrm"], 16), int(st["CapInh"], 16))
    check(libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0), "keep capabilities")
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    amb = int(st.get("CapAmb", "0") or "0", 16)
    for cap in range(ref["cap_last"] + 1):
        if amb >> cap & 1:
            check(libc.prctl(PR_CAP_AMBIENT, 2, cap, 0, 0), "raise an ambient capability")
    if st.get("NoNewPrivs", "0") == "1":
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def differences(ref: dict[str, Any], pid: int) -> list[str]:
    """What /proc/<pid> shows differently from the reference (seen from the host)."""
    st, mine = ref["status"], status(pid)
    out = [k for k in COMPARED if st.get(k) != mine.get(k)]
    out += [f"{ns} namespace" for ns, v in ns_ids(pid).items() if ref["ns"][ns] != v]
    with proc(pid, "cgroup") as f:
        if f.read() != ref["cgroup_text"]:
            out.append("cgroups")
    out += [f"rlimit {r}" for r, v in ref["rlimits"].items() if resource.prlimit(pid, r) != v]
    return out


def run_server(req: dict[str, Any], env: dict[bytes, bytes]) -> NoReturn:
    """In the sandbox, as the reference: the launcher swebox gave, as `python -c` would."""
    os.environ.clear()
    os.environ.update({k.decode(errors="surrogateescape"): v.decode(errors="surrogateescape")
                       for k, v in env.items()})
    sys.argv = ["-c", req["run_dir"], str(req["port"]), *req["args"]]
    code = 0
    try:
        exec(compile(req["launcher"], "<swebox launcher>", "exec"), {"__name__": "__main__"})
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def spawn(req: dict[str, Any], bundle: str) -> tuple[int, int]:
    """Fork a process that is the reference's twin and will run the agent server: its host
    pid, and the pipe that lets it go on (written once swebox has the pid)."""
    global PROC
    PROC = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    ref_pid = int(req["ref"])
    pidfd = os.pidfd_open(ref_pid)
    ref = read_reference(ref_pid, bundle)
    mine = ns_ids(os.getpid())
    fds = [os.open(f"{ref_pid}/ns/{ns}", os.O_RDONLY, dir_fd=PROC) for ns in NAMESPACES
           if ref["ns"][ns] != mine[ns]]  # in NAMESPACES' order
    root = os.open(f"{ref_pid}/root", os.O_RDONLY | os.O_DIRECTORY, dir_fd=PROC)
    if select.select([pidfd], [], [], 0)[0]:  # so everything read was that process's
        raise OSError(0, "the reference exited before it was read")
    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    os.close(pidfd)
    # Set here, on the host (its /proc, every capability), and inherited by the fork.
    for r, limits in ref["rlimits"].items():
        resource.setrlimit(r, limits)
    with proc("self", "oom_score_adj", "w") as f:
        f.write(ref["oom"])
    for path in ref["cgroups"]:
        with open(path, "w") as f:
            f.write(str(os.getpid()))
    for fd in fds:
        os.setns(fd, 0)  # type: ignore[attr-defined]  # (3.12+: the bundle has 3.12)
        os.close(fd)
    os.fchdir(root)
    os.chroot(".")
    os.chdir("/")
    os.close(root)
    # From here the filesystem is the sandbox's, and this process is still root with every
    # capability: nothing may be imported (the fork gets the path back once it is confined).
    path = list(sys.path)
    sys.path.clear()
    sys.path_importer_cache.clear()
    up_r, up_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # in the sandbox's pid namespace
        try:
            os.close(up_r)
            os.close(go_w)
            os.setsid()
            become(ref)
            sys.path[:] = path
            log = os.open(os.path.join(req["run_dir"], "log"),
                          os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            keep = sorted({up_w, go_r})
            os.closerange(3, keep[0])
            os.closerange(keep[0] + 1, keep[1])
            os.closerange(keep[1] + 1, 65536)
            os.write(up_w, b"set")
            if os.read(go_r, 2) != b"go":
                os._exit(1)
            os.close(up_w)
            os.close(go_r)
        except BaseException as e:
            os.write(up_w, f"err {why(e)}".encode()[:400])
            os._exit(126)
        run_server(req, ref["env"])
    os.close(up_w)
    os.close(go_r)
    said = os.read(up_r, 512).decode(errors="replace")
    if said != "set":
        os.waitpid(pid, 0)
        raise OSError(0, said[4:] if said.startswith("err ") else "the fork died setting up")
    wrong = differences(ref, pid)
    if wrong:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise OSError(0, "the fork differs from the sandbox's exec in " + ", ".join(wrong))
    return pid, go_w


def handle(conn: socket.socket, bundle: str) -> NoReturn:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        data = b""
        while not data.endswith(b"\n") and len(data) < 1 << 20:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        pid, go = spawn(json.loads(data), bundle)
        answer = f"ok {pid}"
    except BaseException as e:
        pid, go, answer = 0, -1, f"err {why(e)}".replace("\n", " ")
    try:
        conn.sendall(answer.encode() + b"\n")
        if go >= 0:  # swebox has the pid (and will not launch another agent server)
            os.write(go, b"go")
    except OSError:  # swebox gave up waiting: it launches one itself, so this one goes
        if pid:
            os.kill(pid, signal.SIGKILL)
    finally:
        os._exit(0)


# -- start-up --------------------------------------------------------------------------------
def learn() -> list[str]:
    """The modules the agent server loads up to serving, from a throwaway child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            import asyncio

            tmp = tempfile.mkdtemp(prefix="learn-", dir=os.getcwd())  # (removed with it)
            os.chdir(tmp)
            for key, sub in (("OH_CONVERSATIONS_PATH", "c"), ("OH_BASH_EVENTS_DIR", "b")):
                os.environ[key] = os.path.join(tmp, sub)
            os.environ["SESSION_API_KEY"] = os.urandom(16).hex()
            app = importlib.import_module(APP).api

            async def start_and_stop() -> None:
                async with app.router.lifespan_context(app):
                    pass

            asyncio.run(start_and_stop())
            names = "\n".join(sys.modules).encode()  # in load order: see preload()
        except BaseException:
            traceback.print_exc()
            names = b""
        os.write(w, names)
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode().split()


def preload() -> int:
    """Load what the agent server loads, in the order it did: out of order, a C accelerator
    can load before its Python module and find it half made (`_asyncio` then leaves asyncio
    with its pure-Python current_task, which cannot see C tasks)."""
    failed = 0
    for name in learn():
        if name in sys.modules or name == "__main__" or name == SERVER or \
                name.startswith(SERVER + "."):
            continue
        try:
            importlib.import_module(name)
        except Exception:
            failed += 1
    loaded = sorted(n for n in sys.modules if n == SERVER or n.startswith(SERVER + "."))
    if loaded:  # (then something the server's modules need loads them: forking is unsafe)
        raise SystemExit(f"swebox zygote: {loaded[0]} was loaded; refusing to fork it")
    return failed


def main() -> None:
    path, bundle = sys.argv[1], os.path.realpath(sys.argv[2])
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphaned servers come back to be reaped
    failed = preload()
    import threading

    if threading.active_count() != 1:
        raise SystemExit("swebox zygote: a thread was started while loading; cannot fork")
    gc.collect()
    gc.freeze()  # what is loaded stays shared with the forks
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print(f"ready {len(sys.modules)} modules ({failed} did not load)", flush=True)
    while True:
        readable = select.select([listener, sys.stdin], [], [], 1.0)[0]
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 4096):
            return
        if listener in readable:
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                handle(conn, bundle)
            conn.close()
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass


if __name__ == "__main__":
    main()
