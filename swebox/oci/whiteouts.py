"""Whiteouts for the extractor (`swebox.oci.extract`): `.wh.<name>` removes what lower layers
put at `<name>`, the opaque marker `.wh..wh..opq` empties its directory of what lower layers put
there, and a layer's own entries survive its own whiteouts.
"""

from __future__ import annotations

import os
import stat

from swebox.oci.entries import _EntryWriter
from swebox.oci.safepath import _ABOVE, _DIR_FLAGS, _OUTSIDE, _UNDER, Rel, _lstat, _remove_at

_OPAQUE = ".wh..wh..opq"
_WH = ".wh."


class _Whiteouts(_EntryWriter):
    """Whiteouts and opaque directories, mixed into the extractor
    (`swebox.oci.extract._Extractor`, whose `__init__` sets these attributes)."""

    blocked: dict[Rel, bool]  # subtree or ancestors replaced by a non-directory

    # --- removal --------------------------------------------------------------------------

    def clean_opaque(self, fd: int, canon: Rel) -> None:
        """Remove what lower layers put under the directory `fd` (owned; closed here): every
        descendant the current layer did not write."""
        stack = [(fd, canon)]
        removed: set[Rel] = set()
        try:
            while stack:
                dfd, dpath = stack.pop()
                try:
                    for name in os.listdir(dfd):
                        child = (*dpath, name)
                        if child not in self.created:
                            if _remove_at(dfd, name) in (stat.S_IFDIR, stat.S_IFLNK):
                                self.invalidate()
                            removed.add(child)
                            continue
                        st = _lstat(dfd, name)
                        if st is not None and stat.S_ISDIR(st.st_mode):
                            stack.append((os.open(name, _DIR_FLAGS, dir_fd=dfd), child))
                finally:
                    os.close(dfd)
        finally:
            for dfd, _ in stack:
                os.close(dfd)
        if removed:
            self.forget(removed)

    def lower_gone(self, top: Rel) -> None:
        """Everything lower layers put at or under `top`, the subtree or one of its
        ancestors, is gone: empty `dest` of what this layer did not write."""
        for key in list(self.blocked):
            if key[: len(top)] == top and key not in self.created:
                del self.blocked[key]
        self.clean_opaque(os.dup(self.root_fd), self.prefix)

    # --- whiteouts ------------------------------------------------------------------------

    def whiteout(self, lex: Rel) -> None:
        base, parent = lex[-1], lex[:-1]
        if base == _OPAQUE:
            self.report.whiteouts += 1
            self.opaque(parent)
            return
        if base.startswith(_WH + _WH):
            return  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content
        name = base[len(_WH) :]
        if name in ("", ".", ".."):
            raise self.fail("malformed whiteout name")
        self.report.whiteouts += 1
        target = (*parent, name)
        rel = self.relation(target)
        if rel == _OUTSIDE or target in self.created:
            return  # a layer's own entries survive its whiteouts
        if rel != _UNDER:
            self.lower_gone(target)
            return
        opened = self.open_dir(parent, create=False)
        if opened is None:
            return  # nothing there to remove
        pfd, pcanon = opened
        try:
            path = (*pcanon, name)
            if path not in self.created:
                self.remove(pfd, name, path)
        finally:
            os.close(pfd)

    def opaque(self, dir_lex: Rel) -> None:
        rel = self.relation(dir_lex)
        if rel == _OUTSIDE:
            return
        if rel == _ABOVE:
            self.lower_gone(dir_lex)
            return
        opened = self.open_dir(dir_lex, create=False)
        if opened is not None:
            self.clean_opaque(*opened)
