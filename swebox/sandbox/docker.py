"""Backend `docker` and `podman`: containers through the Docker Engine API (docker-py).

Podman is the same code against Podman's Docker-compatible socket; the only difference is that
Podman containers get explicit `nofile`/`nproc` ulimits (runc refuses to start without them in
some sandboxes). Nothing is injected into the image and nothing is built: PID 1 is a sh loop
that holds the lease, commands run through `exec`, the shell through an attached exec.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from docker.errors import APIError, NotFound
from docker.errors import ImageNotFound as DockerImageNotFound
from docker.types import Ulimit

from swebox.errors import (
    BadInput,
    EngineUnavailable,
    ImageNotFound,
    SandboxError,
    SandboxTimeout,
)
from swebox.sandbox import binds, lifecycle, scripts
from swebox.sandbox.base import Command, Sandbox, Snapshot, to_shell
from swebox.sandbox.engine import connect, engine_url, local_names
from swebox.sandbox.engine_procs import kill_all_but_init, kill_exec_group
from swebox.sandbox.models import ExecResult, SandboxConfig
from swebox.sandbox.session import SHELL_BOOT, Session
from swebox.sandbox.stream import STDERR, CappedBuffer, FrameReader, decode, raw_socket
from swebox.sandbox.tarstream import extract_stream, read_member, single_file_tar, tar_stream

log = logging.getLogger(__name__)

# Host-side safety margin past a command's own timeout, used only if the in-sandbox watcher
# could not act (a frozen container): then the exec is abandoned and its group killed from here.
HOST_GRACE = 10.0


def _image_hint(image: str, backend: str) -> str:
    tool = "podman" if backend == "podman" else "docker"
    return (f"pull it with `{tool} pull {image}`, load a tarball with `{tool} load -i FILE`, "
            "or build the bundled samples with `swebox samples build`")


class DockerSandbox(Sandbox):
    """A container on Docker or Podman. Start one with `DockerSandbox.start(config)`."""

    def __init__(self, config: SandboxConfig, container_id: str, name: str,
                 snapshot: DockerSnapshot | None = None) -> None:
        self.config = config
        self.id = container_id
        self.name = name
        self.client = connect(config.backend, config.engine_url)
        self.api = self.client.api
        self._closed = False
        self._close_lock = threading.Lock()
        self._snapshot = snapshot
        self.expires = float(config.labels.get(lifecycle.L_LEASE, "0") or 0)
        lifecycle.track(self)

    # -- start ------------------------------------------------------------------------------
    @classmethod
    def start(cls, config: SandboxConfig, snapshot: DockerSnapshot | None = None
              ) -> DockerSandbox:
        client = connect(config.backend, config.engine_url)
        api = client.api
        labels = {**config.labels,
                  **lifecycle.owner_labels("sandbox", config.lease, config.task_id)}
        config = config.model_copy(update={"labels": labels})
        lim = config.limits
        host_config = api.create_host_config(
            auto_remove=True,
            network_mode="bridge" if lim.network else "none",
            nano_cpus=int(lim.cpus * 1e9) if lim.cpus else None,
            mem_limit=lim.memory,
            memswap_limit=lim.memory,
            pids_limit=lim.pids,
            security_opt=["no-new-privileges"],
            ulimits=[Ulimit(name="nofile", soft=1024, hard=1024),
                     Ulimit(name="nproc", soft=4096, hard=4096)]
            if config.backend == "podman" else None,
            mounts=binds.engine_mounts(config.binds),
        )
        name = f"swebox-{secrets.token_hex(6)}"
        kwargs: dict[str, Any] = dict(
            image=config.image,
            entrypoint=["/bin/sh", "-c"],
            command=scripts.lease_argv(labels[lifecycle.L_LEASE]),
            labels=labels,
            environment=config.env or None,
            working_dir=config.workdir,
            host_config=host_config,
            name=name,
            network_disabled=not lim.network,
            user=config.user,
        )
        if config.pull == "always":
            cls._pull(client, config)
        try:
            created = cls._create(api, config, kwargs)
        except (DockerImageNotFound, NotFound) as e:
            if config.pull == "never":
                raise ImageNotFound(f"image {config.image} is not present in {config.backend}",
                                    hint=_image_hint(config.image, config.backend)) from e
            cls._pull(client, config)
            created = api.create_container(**kwargs)
        except APIError as e:
            kind = BadInput if e.status_code == 400 else SandboxError  # 400: the request's fault
            raise kind(f"{config.backend} refused to create a container from "
                       f"{config.image}: {e.explanation or e}") from e
        cid = created["Id"]
        try:
            api.start(cid)
        except APIError as e:
            try:
                api.remove_container(cid, force=True)
            except APIError:
                pass
            raise SandboxError(f"{config.backend} could not start {config.image}: "
                               f"{e.explanation or e}",
                               hint="check `swebox doctor` and the engine's log") from e
        return cls(config, cid, name, snapshot)

    @staticmethod
    def _create(api: Any, config: SandboxConfig, kwargs: dict[str, Any]) -> Any:
        """Create from the image, trying each name the engine may store it under."""
        names = local_names(config.backend, config.image)
        for name in names[:-1]:
            try:
                return api.create_container(**{**kwargs, "image": name})
            except (DockerImageNotFound, NotFound):
                continue
        return api.create_container(**{**kwargs, "image": names[-1]})

    @staticmethod
    def _pull(client: Any, config: SandboxConfig) -> None:
        try:
            client.api.pull(config.image)
        except (APIError, Exception) as e:
            msg = getattr(e, "explanation", None) or str(e)
            raise ImageNotFound(
                f"image {config.image} is not present in {config.backend} and pulling it "
                f"failed: {str(msg).splitlines()[0][:200]}",
                hint=_image_hint(config.image, config.backend)) from e

    # -- commands ---------------------------------------------------------------------------
    def _exec_socket(self, argv: list[str], *, stdin: bool, cwd: str | None,
                     env: dict[str, str] | None) -> tuple[str, Any]:
        self._check_open()
        try:
            ex = self.api.exec_create(self.id, argv, stdout=True, stderr=True, stdin=stdin,
                                      tty=False, environment=env or None,
                                      workdir=cwd or self.config.workdir, user=self.config.user
                                      or "")
            return ex["Id"], self.api.exec_start(ex["Id"], socket=True)
        except NotFound as e:
            raise SandboxError(f"sandbox {self.name} is gone (lease expired or removed)",
                               hint="start a new sandbox") from e
        except APIError as e:
            raise SandboxError(f"exec in {self.name} failed: {e.explanation or e}") from e

    def exec(self, cmd: Command, timeout: float | None = None, cwd: str | None = None,
             env: dict[str, str] | None = None) -> ExecResult:
        line = to_shell(cmd)
        if timeout is not None and timeout > 0:
            ticks, tick = scripts.watcher_ticks(timeout)
            argv = ["/bin/sh", "-c", scripts.EXEC_WITH_TIMEOUT, "swebox-exec", str(ticks),
                    f"{tick:g}", line]
        else:
            argv = ["/bin/sh", "-c", line]
        start = time.monotonic()
        exec_id, resp = self._exec_socket(argv, stdin=False, cwd=cwd, env=env)
        limit = self.config.output_limit
        merged, out, err = CappedBuffer(limit), CappedBuffer(limit), CappedBuffer(limit)
        reader = FrameReader(raw_socket(resp))
        deadline = start + timeout + HOST_GRACE if timeout else None
        abandoned = False
        try:
            while (frame := reader.read_frame(deadline)) is not None:
                merged.write(frame[1])
                (err if frame[0] == STDERR else out).write(frame[1])
        except SandboxTimeout:
            abandoned = True
            self._kill_exec_from_host(exec_id)
        finally:
            resp.close()
        duration = time.monotonic() - start
        code = 124 if abandoned else self._exit_code(exec_id)
        # The wrapper exits 124 at the deadline, unless the group KILL reached it first (a
        # command that ignored TERM): then the engine reports 137.
        timed_out = abandoned or (timeout is not None and duration >= timeout
                                  and code in (124, 137, 143))
        code = 124 if timed_out else code
        return ExecResult(exit_code=code, output=decode(merged.getvalue()),
                          stdout=decode(out.getvalue()), stderr=decode(err.getvalue()),
                          duration=duration, timed_out=timed_out, truncated=merged.truncated)

    def _exit_code(self, exec_id: str) -> int:
        for _ in range(50):
            info = self.api.exec_inspect(exec_id)
            if not info.get("Running"):
                code = info.get("ExitCode")
                return int(code) if code is not None else -1
            time.sleep(0.01)
        return -1

    def _kill_exec_from_host(self, exec_id: str) -> None:
        kill_exec_group(self.api, exec_id)

    def kill_processes(self) -> int:
        """Kill every process but the sandbox's init (the lease loop): the way back from a fork
        bomb, whose children no in-sandbox kill can outrun (swebox.sandbox.engine_procs)."""
        self._check_open()
        return kill_all_but_init(self.api, self.id, self.name)

    def shell(self, timeout: float | None = None) -> Session:
        _, resp = self._exec_socket(["/bin/sh", "-c", SHELL_BOOT], stdin=True, cwd=None,
                                    env=None)
        sock = raw_socket(resp)

        def interrupt(pid: int) -> None:
            self.exec(["/bin/sh", "-c", scripts.KILL_GROUP_EXCEPT_LEADER, "swebox-kill",
                       str(pid)], timeout=30)

        def closer() -> None:
            try:
                sock.sendall(b"exit 0\n")
            except OSError:
                pass
            resp.close()

        return Session(sock.sendall, FrameReader(sock), interrupt, closer,
                       self.config.output_limit, default_timeout=timeout)

    # -- files ------------------------------------------------------------------------------
    def write_file(self, path: str, data: bytes | str, mode: int = 0o644) -> None:
        payload = data.encode() if isinstance(data, str) else data
        self._check_open()
        try:
            self.api.put_archive(self.id, "/", single_file_tar(self.abspath(path), payload, mode))
        except APIError as e:
            raise SandboxError(f"cannot write {path} in {self.name}: {e.explanation or e}") from e

    def read_file(self, path: str) -> bytes:
        self._check_open()
        full = self.abspath(path)
        try:
            stream, _ = self.api.get_archive(self.id, full)
        except NotFound as e:
            raise SandboxError(f"no such file in sandbox: {full}") from e
        except APIError as e:
            raise SandboxError(f"cannot read {full} in {self.name}: {e.explanation or e}") from e
        return read_member(stream, full)

    def upload(self, src: str | Path, dest: str) -> None:
        self._check_open()
        full = self.abspath(dest)
        try:
            self.api.put_archive(self.id, "/", tar_stream(Path(src), full))
        except APIError as e:
            raise SandboxError(f"cannot upload to {full} in {self.name}: "
                               f"{e.explanation or e}") from e

    def download(self, src: str, dest: str | Path) -> None:
        self._check_open()
        full = self.abspath(src)
        try:
            stream, _ = self.api.get_archive(self.id, full)
        except NotFound as e:
            raise SandboxError(f"no such path in sandbox: {full}") from e
        extract_stream(stream, Path(dest))

    # -- lifecycle --------------------------------------------------------------------------
    def renew(self, lease: float | None = None) -> float:
        expiry = time.time() + (lease if lease is not None else self.config.lease)
        # Through exec, not the archive API: that writes the image layer under the /dev/shm
        # tmpfs mount, where PID 1 cannot see it.
        res = self.exec(["/bin/sh", "-c", 'printf "%s\\n" "$1" > "$0"', scripts.LEASE_FILE,
                         f"{expiry:.0f}"], timeout=30)
        if not res.ok:
            raise SandboxError(f"could not renew the lease of {self.name}: {res.output[:200]}")
        self.expires = expiry
        return expiry

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer struck in this sandbox (its memory limit).

        The engine's `OOMKilled` flag covers only PID 1 on some engines (Docker 20.10 on
        cgroup v1), so the sandbox's own memory cgroup counters are read too: `oom_kill` in
        memory.events (v2) or memory.oom_control (v1)."""
        try:
            if self.api.inspect_container(self.id)["State"].get("OOMKilled"):
                return True
        except (APIError, NotFound):
            return False
        res = self.exec("cat /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control"
                        " 2>/dev/null", timeout=10)
        for line in res.stdout.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                return True
        return False

    def snapshot(self) -> DockerSnapshot:
        self._check_open()
        labels = lifecycle.owner_labels("snapshot", self.config.lease, self.config.task_id)
        repo, tag = "swebox-snapshot", f"{self.name[7:]}-{secrets.token_hex(4)}"
        try:
            res = self.api.commit(self.id, repository=repo, tag=tag, conf={"Labels": labels},
                                  pause=True)
        except APIError as e:
            raise SandboxError(f"snapshot of {self.name} failed: {e.explanation or e}") from e
        return DockerSnapshot(self.config, f"{repo}:{tag}", res["Id"])

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        lifecycle.untrack(self)
        self._note_use()
        try:
            self.api.remove_container(self.id, force=True)
        except NotFound:
            pass
        except APIError as e:
            if "already in progress" not in str(e) and "No such container" not in str(e):
                raise SandboxError(f"could not remove {self.name}: {e.explanation or e}",
                                   hint="`swebox gc` will remove it once its lease expires"
                                   ) from e
        finally:
            if self._snapshot is not None:
                self._snapshot.release()

    def _note_use(self) -> None:
        """Tell the disk budget this image was just used (it prunes least recently used)."""
        from swebox.images import ledger

        try:
            ledger.touch(engine_url(self.config.backend, self.config.engine_url),
                         local_names(self.config.backend, self.config.image))
        except Exception as e:  # bookkeeping must never stop a sandbox from closing
            log.debug("image ledger not updated: %s", e)

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError(f"sandbox {self.name} is closed")

    def __repr__(self) -> str:
        return f"<DockerSandbox {self.name} image={self.config.image} {self.config.backend}>"


class DockerSnapshot(Snapshot):
    """A committed image; removed once asked to and no sandbox started from it is open."""

    def __init__(self, config: SandboxConfig, ref: str, image_id: str) -> None:
        super().__init__()
        self.config = config
        self.ref = ref
        self.image_id = image_id

    def start(self, n: int = 1, **overrides: object) -> list[Sandbox]:
        base = self.config.model_dump()
        base.update(overrides)
        base["image"] = self.ref
        base["pull"] = "never"
        config = SandboxConfig.model_validate(base)
        out: list[Sandbox] = []
        self.acquire(n)
        try:
            for _ in range(n):
                out.append(DockerSandbox.start(config, snapshot=self))
        except BaseException:
            self.release(n - len(out))
            for sb in out:
                sb.close()
            raise
        return out

    def _delete(self) -> None:
        try:
            connect(self.config.backend, self.config.engine_url).api.remove_image(
                self.image_id, force=True)
        except (NotFound, APIError, EngineUnavailable):
            pass  # `swebox gc` removes snapshot images whose lease expired

