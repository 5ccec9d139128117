"""Backend `bwrap`: sandboxes with bubblewrap over an extracted rootfs, no container engine.

Filesystem. The image is a directory (`swebox.oci.rootfs.rootfs_for` extracts references once
into a cache) that is never written: each sandbox sees it through its own kernel overlayfs, with
upper and work directories under `<state dir>/bwrap/<id>/`. Workspace `mounts` (a host checkout
at /testbed, say) are overlays too, so the host directory never changes and many sandboxes can
share one checkout. bubblewrap 0.8 has no `--overlay`, so swebox mounts the overlays itself -
inside a private mount namespace made for the sandbox (`unshare --mount`), never on the host:
they cannot leak, not even when the owner is killed with SIGKILL, and the host's mount table
never shows them. The overlay is the root of a `bwrap` with new pid, ipc, uts and (unless
`Limits.network`) net namespaces, a fresh /proc, a minimal /dev, a 64 MiB /dev/shm, and the
`scripts.LEASE_LOOP` as its command, like the containers' PID 1.

Exec model: one long-lived sandbox, and every exec enters it. The alternative, a fresh bwrap
per exec over one shared overlay, cannot keep a daemon started by one exec alive for the next
(its pid namespace dies with the exec), nor let one exec see another's processes, which docker
exec does and agents rely on. Entering is done by a small helper (`_ENTER`, run by this Python
with `-I -S`): it joins the sandbox's namespaces (`setns`), its root (`chroot` through
`/proc/<pid>/root`) and its cgroups, forks into the pid namespace, starts a new session (so the
command leads its process group, as engines do), sets the rlimits, drops the capability
bounding set to Docker's default set minus CAP_MKNOD, sets no_new_privs, switches user, and
execs. `nsenter` would do the first half, but it cannot drop capabilities after entering, and
the image may have no tools to do it inside. Concurrent execs are independent helpers; each
costs about 40 ms (a Python start-up), which is what a `docker exec` costs too.

Timeouts are enforced from the host: at the deadline the command's process group gets TERM, and
KILL one second later (what `scripts.EXEC_WITH_TIMEOUT` does inside containers), so a command
that ignores TERM, forks or double-forks is gone within timeout + about 1 s, while a command that
finished in time keeps its daemons. After the command exits, its output is read until the
streams close, at most `DRAIN` seconds more (a daemon may keep them open). Sessions reuse
`Session` over a socketpair; their timeouts kill the shell's group except the shell, from here.

Files are read and written from the host through `/proc/<init pid>/root`, the sandbox's own view
(its /dev/shm included), with `openat2(RESOLVE_IN_ROOT)`: a symlink planted in the sandbox
resolves inside the sandbox, never to the host (or, where openat2 is missing, any symlink on
the way is refused). That root is opened only once bwrap has pivoted into it, and checked to be
the overlay (before the pivot, `/proc/<pid>/root` is the host's `/`). Writes replace files
atomically (a link at the path is replaced, not followed, as tar extraction does); downloads
store links as links and go through `tarstream.extract_stream`, which refuses links leading out.

Lifetime. Each sandbox has a supervisor: `/bin/sh` in the private mount namespace that mounts
the overlays, runs bwrap (`--die-with-parent`), and when bwrap exits unmounts and removes the
cgroups and the state directory. It gets SIGTERM when this process dies (`setpriv
--pdeathsig`, from one thread that lives as long as the process: the signal follows the parent
*thread*, so a pool's worker thread must not be the parent), and then kills the sandbox's PID 1,
which takes the pid namespace and everything in it along. The lease loop ends the sandbox when
the lease expires. `close()` does the same at once and waits for it. `collect()` is the gc for
what a SIGKILLed supervisor leaves (it also runs, for dead owners only, when a sandbox starts).

Limits, where the kernel allows: memory (and memory+swap), pids and cpus through cgroup v1
directories `/sys/fs/cgroup/{memory,pids,cpu}/swebox-bwrap/<id>`, the ones docker enforces.
A limit that was asked for but cannot be enforced (no writable cgroup v1 controller, e.g. on a
cgroup v2 host) is an error at start, never silently dropped. Every exec also gets
RLIMIT_NOFILE 1024 and RLIMIT_NPROC 4096 (the kernel ignores the latter for root). What is in
force is in `sandbox.limits_enforced`. The processes of the execs are in the cgroups; the lease
loop is not, so an OOM kill never takes the sandbox itself down. Root in the sandbox is root
on the host with reduced capabilities and no seccomp filter: weaker isolation than a container
engine's; it needs root on the host.

Layout: `backend` (BwrapSandbox, the Sandbox interface) is made of mixins over `core` (the
state every part shares): `startup` (prepare, overlays, launch, clean-up of a failed start),
`execs` (entering, exec, shell) and `files` (read, write, upload, download). Below them:
`enter` (the entry helper's source), `supervisor` (the supervisor script, host tools, state
paths), `procs` (host processes, the spawner thread), `cgroups`, `fsaccess` (openat2 in the
sandbox's root), `snapshot` (BwrapSnapshot) and `leftovers` (list_sandboxes, collect).
"""

from __future__ import annotations

from swebox.sandbox.bwrap.backend import BwrapSandbox
from swebox.sandbox.bwrap.leftovers import collect, list_sandboxes
from swebox.sandbox.bwrap.snapshot import BwrapSnapshot
from swebox.sandbox.bwrap.supervisor import host_tools, snapshot_root, state_path

__all__ = ["BwrapSandbox", "BwrapSnapshot", "collect", "host_tools", "list_sandboxes",
           "snapshot_root", "state_path"]
