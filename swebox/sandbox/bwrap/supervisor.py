"""The host side of a bwrap sandbox: the supervisor script, the host tools the backend runs,
and where sandboxes and snapshots keep their state."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

from swebox.errors import BadInput, EngineUnavailable

HOST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_OVERLAY_UNSAFE = set(",:\\\n\"'")

# The supervisor: /bin/sh on the host, in the sandbox's private mount namespace. Arguments:
# state dir, the number of overlays, then (options, target) per overlay, then the bwrap command
# line. It mounts, runs bwrap, and after bwrap exits removes the cgroups
# (SWEBOX_CGROUPS) and, once the sandbox had started (the `.started` marker, which the owner
# writes), the state directory: a failed start is left to the owner, which reads its log.
SUPERVISOR = r"""
state=$1; n=$2; shift 2
bw=; stop=; targets=
# Stopping kills the sandbox's PID 1 (bwrap's child), which ends its pid namespace; bwrap
# then reaps it and exits. Only before that child exists is bwrap itself killed.
stop_sandbox() {
  kids=$(cat "/proc/$bw/task/$bw/children" 2>/dev/null)
  if [ -n "$kids" ]; then kill -KILL $kids; else kill -KILL "$bw"; fi
} 2>/dev/null
trap 'stop=1; [ -n "$bw" ] && stop_sandbox' TERM INT HUP
while [ "$n" -gt 0 ]; do
  if ! mount -t overlay swebox -o "$1" "$2"; then
    echo "swebox: cannot mount an overlay on $2" >&2; stop=1; break
  fi
  targets="$2 $targets"
  shift 2; n=$((n - 1))
done
if [ -z "$stop" ]; then
  "$@" &
  bw=$!
  [ -n "$stop" ] && stop_sandbox
  while kill -0 "$bw" 2>/dev/null; do wait "$bw"; done
fi
for t in $targets; do umount -l "$t"; done
for cg in $SWEBOX_CGROUPS; do
  i=0
  while [ -d "$cg" ] && ! rmdir "$cg" 2>/dev/null && [ "$i" -lt 50 ]; do
    sleep 0.1; i=$((i + 1))
  done
done
if [ -e "$state/.started" ]; then cd / && rm -rf -- "$state"; fi
exit 0
"""


# -- host checks -----------------------------------------------------------------------------
_tools: dict[str, str] = {}
_tools_lock = threading.Lock()


def host_tools() -> dict[str, str]:
    """Paths of what the backend runs on the host; EngineUnavailable saying what is missing."""
    with _tools_lock:
        if _tools:
            return _tools
        if os.geteuid() != 0:
            raise EngineUnavailable("the bwrap backend needs root: it mounts overlays and "
                                    "enters namespaces",
                                    hint="run as root, or use backend docker or podman")
        found: dict[str, str] = {}
        for tool, package in (("bwrap", "bubblewrap"), ("setpriv", "util-linux"),
                              ("unshare", "util-linux"), ("mount", "mount"),
                              ("cp", "coreutils")):
            path = shutil.which(tool, path=HOST_PATH)
            if path is None:
                raise EngineUnavailable(f"{tool} is not installed, the bwrap backend needs it",
                                        hint=f"install it (`apt-get install {package}`), or "
                                             "use backend docker or podman")
            found[tool] = path
        try:
            with open("/proc/filesystems") as f:
                has_overlay = any(line.split()[-1] == "overlay" for line in f if line.strip())
        except OSError:
            has_overlay = True  # let the mount itself tell
        if not has_overlay and not Path("/sys/module/overlay").exists():
            raise EngineUnavailable("the kernel has no overlayfs, the bwrap backend needs it",
                                    hint="`modprobe overlay`, or use backend docker or podman")
        found["python"] = sys.executable or shutil.which("python3") or "python3"
        _tools.update(found)
        return _tools


def _cap_last() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


def _state_root() -> Path:
    from swebox.images.ledger import state_dir

    return state_dir().absolute() / "bwrap"


def snapshot_root() -> Path:
    """Where bwrap snapshots keep their layers."""
    from swebox.images.ledger import state_dir

    return state_dir().absolute() / "bwrap-snapshots"


def state_path(sandbox_id: str) -> Path:
    """Where a bwrap sandbox keeps its state; it exists exactly while the sandbox does."""
    return _state_root() / sandbox_id


def _check_overlay_path(path: Path, what: str) -> str:
    text = str(path)
    if _OVERLAY_UNSAFE & set(text) or any(c.isspace() for c in text):
        raise BadInput(f"{what} {text} has a character overlayfs options cannot carry "
                       "(comma, colon, backslash, quote or space)",
                       hint="move it to a plain path, or set SWEBOX_STATE_DIR to one")
    return text


def _rmtree(path: Path) -> None:
    # shutil.rmtree never follows symlinks (the upper dir's content is the sandbox's).
    if path.exists() or path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
