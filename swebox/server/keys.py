"""API keys of the runtime server: created once (the key is shown at creation and never
again), stored as SHA-256 digests in a JSON file only its owner can read, and checked in
constant time.

Keys are 32 random bytes, so a plain digest is enough: nothing to guess from it, and no slow
hash is needed (a slow hash only protects low-entropy secrets such as passwords).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path

from swebox.atomic import atomic_text
from swebox.errors import BadInput

PREFIX = "sbx_"


def default_path() -> Path:
    base = os.environ.get("SWEBOX_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "swebox")
    return Path(base) / "server-keys.json"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self._lock = threading.Lock()
        self._digests: dict[str, str] = {}
        self._stamp: tuple[int, int, int] | None = None
        self.reload()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino, st.st_size)

    def reload(self) -> None:
        stamp = self._file_stamp()
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as e:
            raise BadInput(f"{self.path}: not a key file: {e}",
                           hint="fix or remove it, then add keys with `swebox serve keys add`"
                           ) from e
        self._digests = {str(k): str(v["sha256"]) for k, v in data.get("keys", {}).items()}
        self._stamp = stamp

    def refresh(self) -> None:
        """Reload if the file changed: keys added or removed while the server runs count at
        once (a removed key is revoked). A broken file keeps the last good keys."""
        if self._file_stamp() != self._stamp:
            with self._lock:
                try:
                    self.reload()
                except BadInput:
                    self._stamp = self._file_stamp()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_text(self.path) as f:
            json.dump({"keys": {n: {"sha256": d} for n, d in sorted(self._digests.items())}},
                      f, indent=2)
        os.chmod(self.path, 0o600)

    def add(self, name: str) -> str:
        """A new key for `name`; returns it (the only time it is ever shown)."""
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise BadInput(f"key name {name!r}: use letters, digits, '-' and '_'")
        with self._lock:
            self.reload()
            if name in self._digests:
                raise BadInput(f"a key named {name!r} exists",
                               hint="remove it first with `swebox serve keys remove`")
            key = PREFIX + secrets.token_urlsafe(32)
            self._digests[name] = _digest(key)
            self._save()
        return key

    def remove(self, name: str) -> None:
        with self._lock:
            self.reload()
            if self._digests.pop(name, None) is None:
                raise BadInput(f"no key named {name!r}")
            self._save()

    def names(self) -> list[str]:
        return sorted(self._digests)

    def verify(self, key: str | None) -> str | None:
        """The name of `key`, or None. Every stored digest is compared, each in constant
        time, so the answer's timing says nothing about which digest came close."""
        if not key:
            return None
        self.refresh()
        got = _digest(key)
        found = None
        for name, digest in self._digests.items():
            if hmac.compare_digest(got, digest):
                found = name
        return found
