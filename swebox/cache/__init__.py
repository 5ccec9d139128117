"""The repo cache (seed 002): workdirs extracted once, stored by content, checked out fast."""

from swebox.cache.store import Entry, RepoCache, Stats, Workspace, release

__all__ = ["Entry", "RepoCache", "Stats", "Workspace", "release"]
