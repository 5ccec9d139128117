"""The repo cache (seed 002): workdirs extracted once, stored by content, checked out fast."""

from swebox.cache.checkout import Workspace, checkout, release
from swebox.cache.store import Entry, RepoCache, Stats

__all__ = ["Entry", "RepoCache", "Stats", "Workspace", "checkout", "release"]
