"""What swebox itself put into each engine, and when a sandbox last used it.

The disk budget may remove only images swebox loaded, pulled or built, least recently used
first; it must never touch images the user made by other means (seed 000 had to resort to
`docker system prune -af`, which takes everything). Engines do not record who loaded an image
or when it was last run, so swebox keeps that itself: a small SQLite file under the state
directory (`$SWEBOX_STATE_DIR`, else `$XDG_STATE_HOME/swebox`, else `~/.local/state/swebox`),
shared by every swebox process on the machine (SQLite does the locking), keyed by the engine's
socket URL so Docker and Podman (or two Docker hosts) keep separate books.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
  engine TEXT NOT NULL, id TEXT NOT NULL, how TEXT NOT NULL, size INTEGER NOT NULL,
  added_at REAL NOT NULL, used_at REAL NOT NULL, PRIMARY KEY (engine, id));
CREATE TABLE IF NOT EXISTS names (
  engine TEXT NOT NULL, name TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (engine, name));
"""
_local = threading.local()


class Entry(BaseModel):
    engine: str
    id: str
    how: str  # loaded | pulled | built
    size: int
    added_at: float
    used_at: float
    names: list[str] = []


def state_dir() -> Path:
    if os.environ.get("SWEBOX_STATE_DIR"):
        return Path(os.environ["SWEBOX_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "swebox"


def _path() -> Path:
    return state_dir() / "images.sqlite"


@contextmanager
def _db() -> Iterator[sqlite3.Connection]:
    """One connection per thread and state file; each `with` block is one transaction."""
    path = _path()
    conns: dict[str, sqlite3.Connection] = getattr(_local, "conns", None) or {}
    _local.conns = conns
    conn = conns.get(str(path))
    if conn is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        conns[str(path)] = conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def record(engine: str, image_id: str, names: Iterable[str], size: int, how: str) -> None:
    """Note that swebox put `image_id` (known by `names`) into `engine`."""
    now = time.time()
    with _db() as db:
        db.execute("INSERT INTO images VALUES (?,?,?,?,?,?) ON CONFLICT(engine, id) DO UPDATE "
                   "SET size=excluded.size, used_at=excluded.used_at",
                   (engine, image_id, how, size, now, now))
        db.executemany("INSERT OR REPLACE INTO names VALUES (?,?,?)",
                       [(engine, n, image_id) for n in names])


def touch(engine: str, names: Iterable[str]) -> None:
    """A sandbox used the image known by any of `names` (or ids): it moves to the back of the
    removal queue. One indexed UPDATE; nothing at all while the ledger file does not exist."""
    if not _path().exists():
        return
    keys = list(names)
    marks = ",".join("?" * len(keys))
    with _db() as db:
        db.execute(f"UPDATE images SET used_at=? WHERE engine=? AND (id IN ({marks}) OR id IN "
                   f"(SELECT id FROM names WHERE engine=? AND name IN ({marks})))",
                   (time.time(), engine, *keys, engine, *keys))


def entries(engine: str) -> list[Entry]:
    """Everything swebox put into `engine`, least recently used first."""
    if not _path().exists():
        return []
    with _db() as db:
        rows = db.execute("SELECT engine, id, how, size, added_at, used_at FROM images "
                          "WHERE engine=? ORDER BY used_at, added_at", (engine,)).fetchall()
        names: dict[str, list[str]] = {}
        for name, image_id in db.execute("SELECT name, id FROM names WHERE engine=?",
                                         (engine,)):
            names.setdefault(image_id, []).append(name)
    keys = ("engine", "id", "how", "size", "added_at", "used_at")
    return [Entry(**dict(zip(keys, row, strict=True)), names=sorted(names.get(row[1], [])))
            for row in rows]


def forget(engine: str, image_id: str) -> None:
    with _db() as db:
        db.execute("DELETE FROM images WHERE engine=? AND id=?", (engine, image_id))
        db.execute("DELETE FROM names WHERE engine=? AND id=?", (engine, image_id))
