"""The entry helper: the Python program every exec of a bwrap sandbox runs to get into it.

It is source text, not code of this process: `execs` runs it as `python -I -S -c _ENTER` (a
subprocess), and it must not import anything from the sandbox it enters. Also here: what it
applies to the command (capabilities kept, rlimits).
"""

from __future__ import annotations

NOFILE = 1024
NPROC = 4096
# Docker's default capability set minus CAP_MKNOD (Docker has a devices cgroup to make device
# nodes harmless; here a node made in the sandbox would reach the host's disks).
KEEP_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 29, 31)  # chown dac_override fowner fsetid
# kill setgid setuid setpcap net_bind_service net_raw sys_chroot audit_write setfcap


# -- the in-sandbox entry helper -------------------------------------------------------------
# Runs as `python -I -S -c _ENTER` with its spec (JSON) in SWEBOX_ENTER. Reports on the status
# fd: "ok <host pid of the command>" or "err <why>". Everything that can fail before the fork
# is reported there (exit 125); failures of the command's own set-up go to its stderr (126, or
# 127 when the program is missing), like an engine's exec.
_ENTER = r"""
import ctypes, json, os, resource, sys

NS = (("ipc", 0x08000000), ("uts", 0x04000000), ("net", 0x40000000), ("pid", 0x20000000),
      ("mnt", 0x00020000))
spec = json.loads(os.environ.pop("SWEBOX_ENTER"))
st = spec["status"]
os.set_inheritable(st, False)
libc = ctypes.CDLL(None, use_errno=True)


def report(line):
    os.write(st, (line + "\n").encode())


def fail(msg):
    report("err " + msg)
    os._exit(125)


def check(ret, what):
    if ret != 0:
        raise OSError(ctypes.get_errno(), what + ": " + os.strerror(ctypes.get_errno()))


def table(path):
    try:
        with open(path, "rb") as f:
            return [ln.decode(errors="replace").split(":") for ln in f.read().splitlines()]
    except OSError:
        return []


def resolve_user(user):
    name, _, group = (user or "0").partition(":")
    pw = [r for r in table("/etc/passwd") if len(r) >= 7]
    entry = next((r for r in pw if r[0] == name or (name.isdigit() and r[2] == name)), None)
    if entry is None and not name.isdigit():
        raise OSError(0, f"unable to find user {name}: no matching entries in passwd file")
    uid = int(name) if name.isdigit() else int(entry[2])
    gid = int(entry[3]) if entry else 0
    grp = [r for r in table("/etc/group") if len(r) >= 4]
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((r for r in grp if r[0] == group), None)
            if g is None:
                raise OSError(0, f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    groups = [gid]
    if entry:
        groups += [int(r[2]) for r in grp if entry[0] in r[3].split(",") and r[2].isdigit()]
    home = entry[5] if entry else ("/root" if uid == 0 else "/")
    return uid, gid, sorted(set(groups)), home


def drop_caps():
    for cap in range(spec["cap_last"] + 1):
        if cap not in spec["caps"]:
            check(libc.prctl(24, cap, 0, 0, 0), "drop capability")  # PR_CAPBSET_DROP
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL (absent before Linux 4.3)

    class Hdr(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("eff", ctypes.c_uint32), ("prm", ctypes.c_uint32), ("inh", ctypes.c_uint32)]

    hdr, data = Hdr(0x20080522, 0), (Data * 2)()
    check(libc.capget(ctypes.byref(hdr), data), "capget")
    data[0].inh = data[1].inh = 0  # root's caps after exec: bounding | inheritable
    check(libc.capset(ctypes.byref(hdr), data), "capset")


def child(cgroups):
    try:
        os.setsid()
        for fd in cgroups:
            os.write(fd, b"0")
            os.close(fd)
        for name, value in spec["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        uid, gid, groups, home = resolve_user(spec["user"])
        env = spec["env"]
        env.setdefault("HOME", home)
        drop_caps()
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
        check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")  # PR_SET_NO_NEW_PRIVS
    except Exception as e:  # a malformed /etc/passwd too
        os.write(2, f"swebox: {getattr(e, 'strerror', None) or e}\n".encode())
        os._exit(126)
    try:
        os.chdir(spec["cwd"])
    except OSError as e:
        os.write(2, f"swebox: cannot change to directory {spec['cwd']}: {e.strerror}\n".encode())
        os._exit(126)
    argv = spec["argv"]
    try:
        os.execve(argv[0], argv, env)
    except OSError as e:
        os.write(2, f"swebox: cannot run {argv[0]}: {e.strerror}\n".encode())
        os._exit(127 if e.errno == 2 else 126)


def setup():
    os.makedirs(spec["workdir"], exist_ok=True)
    os.makedirs("/sys", exist_ok=True)
    # sysfs shows the network devices of the namespace that mounts it: only lo here.
    check(libc.mount(b"sysfs", b"/sys", b"sysfs", 1 | 2 | 4 | 8, None), "mount /sys")


def main():
    pid = spec["pid"]
    try:
        nsfds = [(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC), flag)
                 for ns, flag in NS]
        root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        with open(f"/proc/{pid}/stat", "rb") as f:
            start = f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        fail("gone")
    if start != spec["start"]:  # the pid was reused: the sandbox is gone
        fail("gone")
    st_root = os.fstat(root)
    if [st_root.st_dev, st_root.st_ino] != spec["root"]:  # never anything but the overlay
        fail("the sandbox's root changed")
    try:
        # Opened before leaving the host's mount namespace; written by the child.
        cgroups = [os.open(p, os.O_WRONLY | os.O_CLOEXEC) for p in spec["cgroups"]]
        for fd, flag in nsfds:
            check(libc.setns(fd, flag), "setns")
            os.close(fd)
        os.fchdir(root)
        os.chroot(".")
        os.close(root)
        # From here on the filesystem is the sandbox's: nothing may be imported from it (this
        # process is root with every capability until the child drops them).
        sys.path.clear()
        sys.path_importer_cache.clear()
        if spec["mode"] == "setup":
            setup()
            report("ok 0")
            os._exit(0)
    except OSError as e:
        fail(str(e.strerror or e))
    pid = os.fork()
    if pid == 0:
        child(cgroups)
    report(f"ok {pid}")
    os.close(st)
    for fd in cgroups:
        os.close(fd)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


try:
    main()
except BaseException as e:  # never a traceback: printing one reads files of the sandbox
    try:
        report(f"err {type(e).__name__}: {e}")
    finally:
        os._exit(125)
"""
