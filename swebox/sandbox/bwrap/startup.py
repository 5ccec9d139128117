"""Starting a bwrap sandbox: the rootfs and image config, the overlays, the supervisor and
bwrap, waiting for the sandbox's root, start errors, the owner file, and the clean-up when the
sandbox ends or its start fails."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swebox.errors import BadInput, EngineUnavailable, ImageNotFound, SandboxError, SweboxError
from swebox.sandbox import binds, scripts
from swebox.sandbox.bwrap.enter import NOFILE, NPROC
from swebox.sandbox.bwrap.execs import _Execs
from swebox.sandbox.bwrap.fsaccess import _norm, _open_in
from swebox.sandbox.bwrap.procs import _kill_sandbox_processes, _proc_start, _spawner
from swebox.sandbox.bwrap.supervisor import (
    HOST_PATH,
    SUPERVISOR,
    _check_overlay_path,
    _rmtree,
)
from swebox.sandbox.models import SandboxConfig

if TYPE_CHECKING:
    from swebox.sandbox.bwrap.snapshot import BwrapSnapshot

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHM_SIZE = 64 * 1024**2
START_TIMEOUT = 60.0


class _Startup(_Execs):
    """Start-up and tear-down of the sandbox (`BwrapSandbox.start` drives them)."""

    def _prepare(self, snapshot: BwrapSnapshot | None) -> None:
        config = self.config
        if snapshot is not None:
            self.rootfs = snapshot.rootfs
            image_conf = snapshot.image_config
        else:
            self.rootfs = _resolve_rootfs(config)
            image_conf = _image_conf(self.rootfs)
        for item in image_conf.get("Env") or []:
            key, sep, value = str(item).partition("=")
            if sep:
                self.env[key] = value
        self.env.update(config.env)
        self.env.setdefault("PATH", DEFAULT_PATH)
        self.env["HOSTNAME"] = self.id
        self.user = config.user or (str(image_conf.get("User") or "") or None)
        if snapshot is None:
            _check_has_sh(self.rootfs, config.image)
        self._bases["/"] = self.rootfs
        for host, inside in config.mounts.items():
            host_dir = Path(host)
            if not host_dir.is_dir():
                raise BadInput(f"mount source {host} is not a directory",
                               hint="give an existing host directory")
            self._bases[_norm(inside)] = host_dir
        binds.checked(config.binds)
        for target in self._bases:
            self._layers[target] = list(snapshot.layers.get(target, [])) if snapshot else []
        lim = config.limits
        self.limits_enforced = {"network": lim.network, "nofile": NOFILE, "nproc": NPROC}
        self._check_paths()
        self.state.mkdir(parents=True)
        self.limits_enforced.update(self._cgroups.create(lim.memory, lim.pids, lim.cpus))
        self._write_owner()

    def _check_paths(self) -> None:
        _check_overlay_path(self.state, "the state directory")
        for target, base in self._bases.items():
            _check_overlay_path(base, "the rootfs" if target == "/" else "mount source")
            for layer in self._layers[target]:
                _check_overlay_path(layer, "the snapshot layer")

    def _overlays(self) -> list[tuple[str, str, str]]:
        """(target in the sandbox, mount options, merged dir on the host) per overlay."""
        out = []
        for i, (target, base) in enumerate(sorted(self._bases.items(),
                                                  key=lambda kv: kv[0].count("/"))):
            d = self.state / ("root" if target == "/" else f"m{i}")
            upper, work, merged = d / "upper", d / "work", d / "merged"
            for p in (upper, work, merged):
                p.mkdir(parents=True, exist_ok=True)
            if target == "/":
                os.chmod(upper, 0o755)  # the merged root takes the upper dir's mode
            self._uppers[target] = upper
            lowers = ":".join(str(p) for p in [*self._layers[target], base])
            out.append((target, f"nodev,lowerdir={lowers},upperdir={upper},workdir={work}",
                        str(merged)))
        return out

    def _launch(self, tools: dict[str, str]) -> None:
        config = self.config
        overlays = self._overlays()
        info_r, info_w = os.pipe()
        os.set_inheritable(info_w, True)
        expiry = self.expires or time.time() + config.lease
        bwrap = [tools["bwrap"], "--die-with-parent", "--new-session", "--unshare-pid",
                 "--unshare-ipc", "--unshare-uts"]
        if not config.limits.network:
            bwrap.append("--unshare-net")
        bwrap += ["--hostname", self.id, "--cap-drop", "ALL"]
        for target, _, merged in overlays:
            bwrap += ["--bind", merged, target]
        bwrap += binds.bwrap_args(config.binds)
        bwrap += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_SIZE), "--tmpfs",
                  "/dev/shm", "--chmod", "1777", "/dev/shm", "--info-fd", str(info_w),
                  "--chdir", "/", "--clearenv", "--setenv", "PATH", DEFAULT_PATH, "--",
                  "/bin/sh", "-c", *scripts.lease_argv(f"{expiry:.0f}")]
        argv = [tools["setpriv"], "--pdeathsig", "TERM", "--", tools["unshare"], "--mount",
                "--propagation", "private", "--", "/bin/sh", "-c", SUPERVISOR, "swebox-bwrap",
                str(self.state), str(len(overlays))]
        for _, options, merged in overlays:
            argv += [options, merged]
        argv += bwrap
        logf = open(self.state / "init.log", "wb")  # noqa: SIM115 - handed to the child
        env = {"PATH": HOST_PATH, "SWEBOX_CGROUPS": " ".join(map(str,
                                                                 self._cgroups.dirs.values()))}
        try:
            self._supervisor = _spawner.run(lambda: subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                pass_fds=(info_w,), start_new_session=True))
        finally:
            os.close(info_w)
            logf.close()
        try:
            info = self._read_info(info_r)
        finally:
            os.close(info_r)
        self._init_pid = int(info["child-pid"])
        self._init_start = _proc_start(self._init_pid)
        self._root_fd = self._await_root(overlays[0][2])
        self._write_owner()
        try:
            helper, _ = self._enter(["/bin/true"], mode="setup")
            helper.wait()
        except SandboxError as e:
            raise self._start_error(e.message) from e
        (self.state / ".started").touch()
        threading.Thread(target=self._watch, name=f"swebox-{self.id}-watch",
                         daemon=True).start()

    def _read_info(self, fd: int) -> dict[str, Any]:
        """bwrap's --info-fd JSON (the host pid of the sandbox's PID 1)."""
        buf = b""
        deadline = time.monotonic() + START_TIMEOUT
        decoder = json.JSONDecoder()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                try:
                    info, _ = decoder.raw_decode(buf.decode().strip())
                except ValueError:
                    continue
                if isinstance(info, dict) and isinstance(info.get("child-pid"), int):
                    return info
        raise self._start_error("bwrap did not start")

    def _await_root(self, merged: str) -> int:
        """An fd of the sandbox's root, once bwrap has finished setting it up.

        bwrap reports its child's pid before that child has pivoted into the new root: until
        then `/proc/<pid>/root` is the host's root, and writing through it would write to the
        host. PID 1 forks the command only after the pivot, so its first child means ready;
        the root is then checked to be the overlay itself, whatever happens."""
        pid, sup = self._init_pid, self._supervisor
        children = f"/proc/{pid}/task/{pid}/children"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with open(children) as f:
                    if f.read().strip():
                        break
            except OSError as e:
                raise self._start_error("the sandbox exited at once") from e
            if time.monotonic() > deadline or (sup is not None and sup.poll() is not None):
                raise self._start_error("bwrap did not finish setting up the sandbox")
            time.sleep(0.002)
        try:
            fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise self._start_error("the sandbox exited at once") from e
        try:
            # The merged overlay as the supervisor (in whose mount namespace it is) sees it.
            want = os.stat(f"/proc/{sup.pid if sup else 0}/root{merged}")
            got = os.fstat(fd)
        except OSError as e:
            os.close(fd)
            raise self._start_error("the sandbox exited at once") from e
        if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino) or _proc_start(pid) != \
                self._init_start:
            os.close(fd)
            raise SandboxError("the sandbox's root is not its overlay; refusing to use it",
                               hint="report this: bwrap set the sandbox up in an unexpected way")
        self._root_id = (got.st_dev, got.st_ino)
        return fd

    def _start_error(self, what: str) -> SweboxError:
        sup = self._supervisor
        if sup is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                sup.wait(timeout=2)
        try:
            text = (self.state / "init.log").read_text(errors="replace").strip()
        except OSError:
            text = ""
        lines = [ln for ln in text.splitlines() if ln.strip()]
        last = lines[-1][:300] if lines else ""
        if "execvp /bin/sh" in text or "cannot run /bin/sh" in text:
            return SandboxError(f"{self.config.image} has no /bin/sh; a sandbox needs one",
                                hint="use an image with a POSIX shell at /bin/sh")
        if last.startswith("bwrap:") and "execvp" not in last:
            return EngineUnavailable(f"bubblewrap cannot create a sandbox here: {last}",
                                     hint="run as root on a kernel with namespaces, or use "
                                          "backend docker or podman")
        if "overlay" in text or "mount" in last:
            return SandboxError(f"cannot mount the sandbox's overlay: {last}",
                                hint="keep SWEBOX_STATE_DIR on a local filesystem (ext4, xfs, "
                                     "tmpfs), not on overlayfs or NFS")
        return SandboxError(f"{what}: {last or 'no message'}",
                            hint="check `swebox doctor`; the bwrap backend needs root")

    def _write_owner(self) -> None:
        sup = self._supervisor
        data = {"id": self.id, "labels": self.config.labels, "expires": self.expires,
                "cgroups": [str(p) for p in self._cgroups.dirs.values()],
                "supervisor": sup.pid if sup else 0,
                "supervisor_start": _proc_start(sup.pid) if sup else "",
                "init": self._init_pid, "image": self.config.image}
        tmp = self.state / ".owner.json.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state / "owner.json")

    def _watch(self) -> None:
        """When the supervisor exits (lease expired, killed): the sandbox is gone. Clean up
        what a supervisor killed with SIGKILL could not."""
        sup = self._supervisor
        if sup is None:
            return
        sup.wait()
        self._gone = True
        self._release_root()
        with self._close_lock:
            if not self._closed and self.state.exists():
                _kill_sandbox_processes(self.state, self._cgroups.procs_dirs())
                self._cgroups.remove(wait=2)
                _rmtree(self.state)

    def _abort(self) -> None:
        """Undo a failed start."""
        self._closed = True
        self._release_root()
        sup = self._supervisor
        if sup is not None and sup.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                sup.send_signal(signal.SIGTERM)
            try:
                sup.wait(timeout=10)
            except subprocess.TimeoutExpired:
                sup.kill()
                sup.wait()
        _kill_sandbox_processes(self.state, self._cgroups.procs_dirs())
        self._cgroups.remove(wait=2)
        _rmtree(self.state)
        if self._snapshot is not None:
            self._snapshot.release()
            self._snapshot = None


def _check_has_sh(rootfs: Path, image: str) -> None:
    try:
        root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ImageNotFound(f"cannot open the rootfs {rootfs}: {e.strerror}",
                            hint="extract the image again") from e
    try:
        os.close(_open_in(root, "/bin/sh", os.O_PATH))
    except OSError:
        raise SandboxError(f"{image} has no /bin/sh; a sandbox needs one",
                           hint="use an image with a POSIX shell at /bin/sh") from None
    finally:
        os.close(root)



def _image_conf(rootfs: Path) -> dict[str, Any]:
    from swebox.oci.rootfs import image_config

    conf = image_config(rootfs).get("config")
    return conf if isinstance(conf, dict) else {}


def _resolve_rootfs(config: SandboxConfig) -> Path:
    """The rootfs directory of `config.image`: the image itself when it is a directory path,
    else through the rootfs cache."""
    image = config.image
    if image.startswith(("/", "./", "../")) and config.rootfs_source is None:
        path = Path(image).resolve()
        if not path.is_dir():
            raise ImageNotFound(f"rootfs directory {image} does not exist",
                                hint="extract an image there, or give an image reference")
        return path
    from swebox.oci.rootfs import rootfs_for

    return rootfs_for(image, source=config.rootfs_source, pull=config.pull).resolve()
