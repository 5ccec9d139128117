"""`BwrapSnapshot`: frozen upper layers of a bwrap sandbox, and the sandboxes (forks) started
from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swebox.sandbox.base import Sandbox, Snapshot
from swebox.sandbox.bwrap.supervisor import _rmtree
from swebox.sandbox.models import SandboxConfig


# -- snapshots ----------------------------------------------------------------------------------
class BwrapSnapshot(Snapshot):
    """Frozen upper layers of a sandbox; removed once asked to and no sandbox (or snapshot)
    built on it is left."""

    def __init__(self, config: SandboxConfig, snap_id: str, path: Path, rootfs: Path,
                 image_config: dict[str, Any], layers: dict[str, list[Path]],
                 parent: BwrapSnapshot | None = None) -> None:
        super().__init__()
        self.config = config
        self.id = snap_id
        self.ref = f"bwrap-snapshot:{snap_id}"
        self.path = path
        self.rootfs = rootfs
        self.image_config = image_config
        self.layers = layers
        # The layers of the snapshot this one was taken from stay in use under this one.
        self._parent = parent
        if parent is not None:
            parent.acquire()

    def start(self, n: int = 1, **overrides: object) -> list[Sandbox]:
        from swebox.sandbox.bwrap.backend import BwrapSandbox  # backend imports this module

        base = self.config.model_dump()
        base.update(overrides)
        base["image"] = self.config.image  # the filesystem is the snapshot's, whatever asked
        config = SandboxConfig.model_validate(base)
        out: list[Sandbox] = []
        try:
            for _ in range(n):
                out.append(BwrapSandbox.start(config, snapshot=self))
        except BaseException:
            for sb in out:
                sb.close()
            raise
        return out

    def _delete(self) -> None:
        _rmtree(self.path)
        if self._parent is not None:
            self._parent.release()
            self._parent = None
