"""What bwrap sandboxes leave behind: listing them from their state directories, and
collecting those whose owner or supervisor is gone or whose lease expired."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from swebox.sandbox import lifecycle
from swebox.sandbox.bwrap.cgroups import _rmdir_cgroups
from swebox.sandbox.bwrap.procs import _kill_sandbox_processes, _proc_start, _wait_gone
from swebox.sandbox.bwrap.supervisor import _rmtree, _state_root, snapshot_root


# -- garbage collection ---------------------------------------------------------------------
def list_sandboxes() -> list[dict[str, Any]]:
    """What each bwrap sandbox on this machine recorded at start (owner labels, supervisor)."""
    root = _state_root()
    out: list[dict[str, Any]] = []
    if not root.is_dir():
        return out
    for entry in sorted(root.iterdir()):
        try:
            data = json.loads((entry / "owner.json").read_text())
        except (OSError, ValueError):
            data = {"id": entry.name, "labels": {}, "supervisor": 0, "cgroups": []}
        if isinstance(data, dict):
            data["path"] = str(entry)
            out.append(data)
    return out


def _remove_stale(info: dict[str, Any]) -> bool:
    sup, start = int(info.get("supervisor") or 0), str(info.get("supervisor_start") or "")
    if sup and start and _proc_start(sup) == start:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup, signal.SIGTERM)
        if not _wait_gone(sup, start, 10):
            with contextlib.suppress(ProcessLookupError):
                os.kill(sup, signal.SIGKILL)
            _wait_gone(sup, start, 5)
    cgroups = [str(cg) for cg in info.get("cgroups") or []]
    _kill_sandbox_processes(Path(info["path"]), cgroups)
    _rmdir_cgroups(cgroups, 5)
    _rmtree(Path(info["path"]))
    return not Path(info["path"]).exists()


def collect(*, everything: bool = False, dry_run: bool = False,
            owner_gone_only: bool = False, now: float | None = None
            ) -> list[lifecycle.Collected]:
    """Remove bwrap sandboxes (and snapshots) whose owner process is gone, whose supervisor
    died, or whose lease expired; `everything` removes all. Sandboxes of live owners are
    otherwise left alone. `owner_gone_only` is the cheap pass run when a sandbox starts."""
    now = time.time() if now is None else now
    done: list[lifecycle.Collected] = []
    for info in list_sandboxes():
        labels = info.get("labels") or {}
        sup, start = int(info.get("supervisor") or 0), str(info.get("supervisor_start") or "")
        owner = lifecycle.owner_alive(labels)
        if everything:
            reason = "asked to remove all"
        elif owner is False:
            reason = "owner process is gone"
        elif owner_gone_only:
            continue
        elif sup and start and _proc_start(sup) != start:
            reason = "not running"
        elif float(info.get("expires") or 0) and float(info.get("expires") or 0) < now - 60:
            reason = "lease expired"
        else:
            continue
        removed = False if dry_run else _remove_stale(info)
        done.append(lifecycle.Collected("bwrap", str(info.get("id") or Path(info["path"]).name),
                                        f"swebox-{Path(info['path']).name}", reason, removed))
    snaps = snapshot_root()
    if snaps.is_dir():
        for entry in sorted(snaps.iterdir()):
            try:
                labels = json.loads((entry / "owner.json").read_text()).get("labels") or {}
            except (OSError, ValueError, AttributeError):
                labels = {}
            if everything or lifecycle.owner_alive(labels) is False:
                if not dry_run:
                    _rmtree(entry)
                done.append(lifecycle.Collected("bwrap-snapshot", entry.name, entry.name,
                                                "asked to remove all" if everything else
                                                "owner process is gone", not dry_run))
    return done
