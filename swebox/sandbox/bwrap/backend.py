"""`BwrapSandbox`: the bwrap backend's Sandbox. Its parts are mixins: `startup`, `execs` and
`files`, over the shared state in `core`; here are start, renew, snapshot and close."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path, PurePosixPath

from swebox.errors import SandboxError
from swebox.sandbox import lifecycle, scripts
from swebox.sandbox.bwrap.files import _Files
from swebox.sandbox.bwrap.fsaccess import _open_in, _place_file, _write_all
from swebox.sandbox.bwrap.leftovers import collect
from swebox.sandbox.bwrap.procs import _kill_sandbox_processes, _proc_start
from swebox.sandbox.bwrap.snapshot import BwrapSnapshot
from swebox.sandbox.bwrap.startup import _image_conf, _Startup
from swebox.sandbox.bwrap.supervisor import _rmtree, host_tools, snapshot_root
from swebox.sandbox.models import SandboxConfig


# -- the sandbox -----------------------------------------------------------------------------
class BwrapSandbox(_Startup, _Files):
    """A bubblewrap sandbox over a private overlay of a rootfs. Start with `start(config)`."""

    # -- start ------------------------------------------------------------------------------
    @classmethod
    def start(cls, config: SandboxConfig, snapshot: BwrapSnapshot | None = None
              ) -> BwrapSandbox:
        tools = host_tools()
        with contextlib.suppress(Exception):  # gc is best effort; it must never stop a start
            collect(owner_gone_only=True)
        labels = {**config.labels,
                  **lifecycle.owner_labels("sandbox", config.lease, config.task_id)}
        config = config.model_copy(update={"labels": labels})
        sb = cls(config, secrets.token_hex(6))
        if snapshot is not None:
            snapshot.acquire()
            sb._snapshot = snapshot
        try:
            sb._prepare(snapshot)
            sb._launch(tools)
        except BaseException:
            sb._abort()
            raise
        lifecycle.track(sb)
        return sb

    # -- lifecycle --------------------------------------------------------------------------
    def renew(self, lease: float | None = None) -> float:
        expiry = time.time() + (lease if lease is not None else self.config.lease)
        text = f"{expiry:.0f}\n".encode()
        with self._root() as root:
            try:
                pfd = _open_in(root, str(PurePosixPath(scripts.LEASE_FILE).parent),
                               os.O_RDONLY | os.O_DIRECTORY)
                try:
                    _place_file(pfd, PurePosixPath(scripts.LEASE_FILE).name,
                                lambda fd: _write_all(fd, text), 0o644)
                finally:
                    os.close(pfd)
            except OSError as e:
                raise SandboxError(f"could not renew the lease of {self.name}: {e}") from e
        self.expires = expiry
        with contextlib.suppress(OSError):
            self._write_owner()
        return expiry

    def oom_killed(self) -> bool:
        """Whether the OOM killer struck in the sandbox's memory cgroup."""
        return self._cgroups.oom_kills() > 0

    def snapshot(self) -> BwrapSnapshot:
        """Copies of the sandbox's upper layers (`cp -a`, with the execs' processes frozen
        meanwhile), stacked on the layers this sandbox itself started from."""
        self._check_open()
        snap_id = secrets.token_hex(6)
        path = snapshot_root() / snap_id
        path.mkdir(parents=True)
        layers: dict[str, list[Path]] = {}
        try:
            (path / "owner.json").write_text(json.dumps(
                {"labels": lifecycle.owner_labels("snapshot", self.config.lease,
                                                  self.config.task_id)}))
            with self._cgroups.frozen():
                for i, (target, upper) in enumerate(sorted(self._uppers.items())):
                    dest = path / f"layer{i}"
                    done = subprocess.run([host_tools()["cp"], "-a", "--reflink=auto", "--",
                                           str(upper), str(dest)], capture_output=True)
                    if done.returncode != 0:
                        raise SandboxError(f"snapshot of {self.name} failed: "
                                           f"{done.stderr.decode(errors='replace')[:200]}")
                    layers[target] = [dest, *self._layers[target]]
        except BaseException:
            _rmtree(path)
            raise
        image_conf = (self._snapshot.image_config if self._snapshot is not None else
                      _image_conf(self.rootfs))
        return BwrapSnapshot(self.config, snap_id, path, self.rootfs, image_conf, layers,
                             parent=self._snapshot)

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        lifecycle.untrack(self)
        self._release_root()
        sup = self._supervisor
        try:
            if sup is not None and sup.poll() is None:
                # Killing the sandbox's PID 1 ends its pid namespace (the kernel kills every
                # process in it); bwrap then exits normally, and the supervisor cleans up.
                if self._init_pid and _proc_start(self._init_pid) == self._init_start:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self._init_pid, signal.SIGKILL)
                try:
                    sup.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        sup.send_signal(signal.SIGTERM)
                    try:
                        sup.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        sup.kill()  # bwrap dies with it (--die-with-parent)
                        sup.wait()
            # What the supervisor could not do (it was killed, or the start failed).
            if self.state.exists():
                _kill_sandbox_processes(self.state, self._cgroups.procs_dirs())
                self._cgroups.remove(wait=5)
                _rmtree(self.state)
        finally:
            if self._snapshot is not None:
                self._snapshot.release()
                self._snapshot = None

    def __repr__(self) -> str:
        return f"<BwrapSandbox {self.name} image={self.config.image}>"
