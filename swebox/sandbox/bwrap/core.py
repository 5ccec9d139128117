"""What every part of a bwrap sandbox shares: its state, set up in `__init__`, and the guards
on it (open, not gone; the root fd). The mixins of `BwrapSandbox` build on this class."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from swebox.errors import SandboxError
from swebox.sandbox import lifecycle
from swebox.sandbox.base import Sandbox
from swebox.sandbox.bwrap.cgroups import _Cgroups
from swebox.sandbox.bwrap.supervisor import state_path
from swebox.sandbox.models import SandboxConfig

if TYPE_CHECKING:
    from swebox.sandbox.bwrap.snapshot import BwrapSnapshot


class _Core(Sandbox):
    """The state of a bwrap sandbox (see `BwrapSandbox`)."""

    limits_enforced: dict[str, int | float | bool]

    def __init__(self, config: SandboxConfig, sandbox_id: str) -> None:
        self.config = config
        self.id = sandbox_id
        self.name = f"swebox-{sandbox_id}"
        self.state = state_path(sandbox_id)
        self.expires = float(config.labels.get(lifecycle.L_LEASE, "0") or 0)
        self.limits_enforced = {}
        self.rootfs = Path()
        self.env: dict[str, str] = {}
        self.user: str | None = None
        self._cgroups = _Cgroups(sandbox_id)
        self._supervisor: subprocess.Popen[bytes] | None = None
        self._init_pid = 0
        self._init_start = ""
        self._root_fd = -1
        self._root_id = (0, 0)  # (st_dev, st_ino) of the sandbox's root, checked on entry
        self._root_lock = threading.Lock()
        self._closed = False
        self._gone = False
        self._close_lock = threading.Lock()
        self._snapshot: BwrapSnapshot | None = None
        # Per overlay ("/" and each mount target): the base (rootfs or host dir) and the
        # snapshot layers stacked on it, top first.
        self._bases: dict[str, Path] = {}
        self._layers: dict[str, list[Path]] = {}
        self._uppers: dict[str, Path] = {}

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError(f"sandbox {self.name} is closed")
        if self._gone:
            raise SandboxError(f"sandbox {self.name} is gone (lease expired or removed)",
                               hint="start a new sandbox")

    @contextlib.contextmanager
    def _root(self) -> Iterator[int]:
        """A private duplicate of the root fd, so close() can never pull it from under an
        operation in another thread."""
        self._check_open()
        with self._root_lock:
            if self._root_fd < 0:
                raise SandboxError(f"sandbox {self.name} is gone (lease expired or removed)",
                                   hint="start a new sandbox")
            fd = os.dup(self._root_fd)
        try:
            yield fd
        finally:
            os.close(fd)

    def _release_root(self) -> None:
        with self._root_lock:
            if self._root_fd >= 0:
                os.close(self._root_fd)
                self._root_fd = -1
