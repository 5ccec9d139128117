"""Applying an image's layers to a directory, base first, as overlayfs would show them.

Whiteouts (`.wh.<name>`) remove what lower layers put at `<name>`; an opaque marker
(`.wh..wh..opq`) hides everything lower layers put in its directory; a layer's own entries
survive its own whiteouts, whatever their order in the tar. Devices and fifos are skipped and
counted (we never mknod); xattrs are not applied; symlink targets are written verbatim.

Nothing is written, linked or removed outside `dest`. Names are normalised lexically (a
leading `/` is dropped; a `..` that climbs above the root is `CorruptData` naming the layer
and entry). Paths are walked one component at a time from a directory fd with
`O_DIRECTORY|O_NOFOLLOW`, and the last component is created with `O_EXCL`, mkdirat, symlinkat
or linkat after removing what was there, so the kernel never follows a planted symlink.

Symlinked parents (policy): a symlink met on the way to an entry, a hardlink target or a
whiteout is resolved *inside the rootfs* (chroot semantics, as umoci's securejoin, containerd
and Docker's chrooted untar do): `..` stops at the root, an absolute target restarts at `dest`.
So `link -> /etc` then `link/passwd` writes `dest/etc/passwd`, and `link -> ../../..` then
`link/x` writes `dest/x`. More than 40 symlinks in one walk is `CorruptData`.

`subtree="/testbed"` writes only what is under /testbed, at the root of `dest`; whiteouts and
opaque markers on /testbed or its ancestors still apply. An entry whose parent symlink leads
out of the subtree is skipped (`skipped_outside`); symlinks elsewhere that lead into the
subtree are not followed. A hardlink from the subtree to a file outside it gets the file's
content by a second read of that layer; otherwise every layer is streamed once (`r|`).

This module reads the layers and applies their entries; `_Extractor` gets the rest from mixins:
path walking from `swebox.oci.safepath`, writing entries (and hardlinks into the subtree) from
`swebox.oci.entries`, whiteouts and opaque directories from `swebox.oci.whiteouts`.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tarfile
import tempfile
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import IO, Any

from swebox.errors import BadInput, CorruptData, DiskFull
from swebox.oci.entries import _CHUNK, ExtractReport, _Meta
from swebox.oci.image import Descriptor, ImageSource
from swebox.oci.layers import VerifyingReader, open_layer
from swebox.oci.safepath import _OUTSIDE, _SELF, _UNDER, Rel, _remove_at, _split
from swebox.oci.whiteouts import _WH, _Whiteouts

__all__ = ["ExtractReport", "extract", "extract_to"]


class _TailKeeper(io.RawIOBase):
    """Passes a stream through, counting bytes and keeping the last ones read.

    Python's tarfile ends an archive silently at a damaged header (`r|` mode), so after the
    tar ends we check that everything from its end offset on is zero padding; the bytes
    tarfile had already buffered are still here to check."""

    _KEEP = 256 << 10

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner
        self.pos = 0
        self._tail: deque[bytes] = deque()
        self._tail_len = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        data = self._inner.read(len(view))
        if not data:
            return 0
        n = len(data)
        view[:n] = data
        self.pos += n
        self._tail.append(data)
        self._tail_len += n
        while self._tail_len - len(self._tail[0]) >= self._KEEP:
            self._tail_len -= len(self._tail.popleft())
        return n

    def rest_is_zero(self, offset: int) -> bool:
        """Whether every byte from `offset` to the end of the stream is zero."""
        start = self.pos - self._tail_len
        if offset < start:
            return False  # cannot happen with tarfile's 10 KiB records; refuse rather than guess
        kept = b"".join(self._tail)[offset - start :]
        if kept.count(0) != len(kept):
            return False
        while True:
            chunk = self._inner.read(_CHUNK)
            if not chunk:
                return True
            if chunk.count(0) != len(chunk):
                return False


class _Extractor(_Whiteouts):
    """The state of one extraction: the fd of `dest`, recorded directory modes (applied at the
    end), a small cache of opened directories, and what the current layer has written."""

    def __init__(self, source: ImageSource, root_fd: int, prefix: Rel, owner: bool) -> None:
        self.source = source
        self.root_fd = root_fd
        self.prefix = prefix
        self.owner = owner
        self.report = ExtractReport()
        self.dir_meta: dict[Rel, _Meta] = {}
        self.cache: dict[Rel, tuple[int, Rel]] = {}
        self.blocked: dict[Rel, bool] = {}  # subtree or ancestors replaced by a non-directory
        self.seen_subtree = not prefix
        self.where = ""
        self.entry = ""
        # Per layer: what this layer wrote (and their parents), for opaque dirs and whiteouts.
        self.created: set[Rel] = set()
        self.outside_links: dict[Rel, Rel] = {}  # hardlinks outside the subtree → targets
        self.pending: dict[Rel, list[Rel]] = {}  # outside target → placeholders to fill

    # --- one layer ------------------------------------------------------------------------

    def members(self, desc: Descriptor, diff_id: str | None
                ) -> Generator[tuple[tarfile.TarFile, tarfile.TarInfo], None, None]:
        """The layer's tar entries, streamed; digests are checked when the stream ends."""
        blob = self.source.open_blob(desc)
        stream: IO[bytes] = blob
        try:
            stream = open_layer(blob, self.where)
            if diff_id is not None and diff_id != desc.digest:
                # Also check the uncompressed bytes against the config's rootfs.diff_ids.
                stream = io.BufferedReader(
                    VerifyingReader(stream, diff_id, f"{self.where} (uncompressed)"))
            keeper = _TailKeeper(stream)
            try:
                with tarfile.open(fileobj=keeper, mode="r|", encoding="utf-8",
                                  errors="surrogateescape") as tar:
                    while True:
                        self.entry = ""
                        member = tar.next()
                        if member is None:
                            break
                        tar.members.clear()  # type: ignore[attr-defined]  # else r| keeps every header
                        self.entry = member.name
                        yield tar, member
                    self.entry = ""
                    if not keeper.rest_is_zero(tar.offset):
                        raise self.fail("damaged tar header or data after the end of the "
                                        f"archive (offset {tar.offset})")
            except tarfile.TarError as e:
                raise self.fail(f"broken tar stream: {e}") from e
            while blob.read(_CHUNK):  # reach EOF so the blob's digest is checked
                pass
        finally:
            stream.close()
            blob.close()

    def apply(self, desc: Descriptor, diff_id: str | None) -> None:
        self.created = set()
        self.outside_links = {}
        self.pending = {}
        try:
            with contextlib.closing(self.members(desc, diff_id)) as entries:
                for tar, member in entries:
                    self.apply_entry(tar, member)
            if any(self.pending.values()):
                self.fill_pending(desc, diff_id)
        except tarfile.TarError as e:  # raised while reading an entry's data
            raise self.fail(f"broken tar stream: {e}") from e
        except CorruptData as e:
            if self.where in e.message:
                raise
            # From the source's digest check: say which layer it was.
            raise CorruptData(f"{self.where}: {e.message}", hint=e.hint) from e

    def apply_entry(self, tar: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        lex = _split(m.name)
        if lex is None:
            raise self.fail("path climbs out of the root with '..'")
        base = lex[-1] if lex else ""
        if base.startswith(_WH):
            self.whiteout(lex)
            return
        rel = self.relation(lex)
        if rel == _OUTSIDE:
            if m.islnk():
                target = _split(m.linkname)
                if target is None:
                    raise self.fail("hardlink target climbs out of the root with '..'")
                self.outside_links[lex] = target
            return
        if rel != _UNDER:  # the subtree itself (the root when there is none) or an ancestor
            self.seen_subtree = self.seen_subtree or rel == _SELF
            self.mark(lex)
            if m.isdir():
                self.blocked.pop(lex, None)
                if rel == _SELF:
                    self.dir_meta[lex] = self.meta(m)
            elif not lex:
                raise self.fail("the root is not a directory")
            else:
                # The subtree's root (or an ancestor) became a non-directory: its lower
                # content is gone and nothing under it can be written until that changes.
                self.lower_gone(lex)
                self.blocked[lex] = True
            return
        self.seen_subtree = True
        if any(self.blocked.values()):
            self.report.skipped_outside += 1
            return
        if m.isdev():  # character, block devices and fifos
            self.report.skipped_devices += 1
        elif not (m.isreg() or m.isdir() or m.issym() or m.islnk()):
            raise self.fail(f"unsupported tar entry type {m.type!r}")
        opened = self.open_dir(lex[:-1], create=True)
        if opened is None:
            self.report.skipped_outside += 1
            return
        pfd, pcanon = opened
        try:
            self.write(tar, m, pfd, lex[-1], (*pcanon, lex[-1]))
        finally:
            os.close(pfd)

    def fill_pending(self, desc: Descriptor, diff_id: str | None) -> None:
        want = {t: paths for t, paths in self.pending.items() if paths}
        self.where += " (second read, for hardlinks into the subtree)"
        with contextlib.closing(self.members(desc, diff_id)) as entries:
            for tar, m in entries:
                lex = _split(m.name)
                if lex is None or not m.isreg() or lex not in want:
                    continue
                self.fill(tar, m, want.pop(lex))
        if want:
            missing = "/".join(next(iter(want)))
            raise self.fail(f"hardlink target {missing} is not a file of this layer")

    # --- the end --------------------------------------------------------------------------

    def finish(self) -> None:
        """Directory modes and times, deepest first: only now, so that read-only directories
        did not block writing into them, and writing did not change their mtimes."""
        self.invalidate()
        for path in sorted(self.dir_meta, key=len, reverse=True):
            fd = self.open_canonical(path)
            if fd is None:
                continue
            try:
                self.set_meta(fd, self.dir_meta[path])
            finally:
                os.close(fd)


def _diff_ids(source: ImageSource, count: int) -> list[str | None]:
    rootfs = source.config().get("rootfs") or {}
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if isinstance(ids, list) and len(ids) == count and all(isinstance(i, str) for i in ids):
        return list(ids)
    return [None] * count


def extract(source: ImageSource, dest: str | Path, subtree: str | None = None, *,
            preserve_owner: bool = False) -> ExtractReport:
    """Apply `source`'s layers to `dest` (created if missing, normally empty), base first.

    `subtree` (`/testbed`) extracts only that directory, at the root of `dest`. Ownership
    is applied only when `preserve_owner` and running as root; otherwise setuid/setgid bits
    are dropped from files (they would apply to whoever extracted them). On error this raises
    (`CorruptData` for a damaged or hostile image, `BadInput` for a subtree the image does not
    have, `DiskFull`) and leaves `dest` partly written. Digests are known only at the end of
    each layer, so a corrupt layer's files may already be in `dest` by then: use `extract_to`
    for all-or-nothing.
    """
    prefix: Rel = ()
    if subtree is not None:
        split = _split(subtree)
        if split is None:
            raise BadInput(f"subtree {subtree!r} climbs out of the root",
                           hint="give an absolute path inside the image, like /testbed")
        prefix = split
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise BadInput(f"cannot use {dest} as the extraction directory: {e.strerror}",
                       hint="give a writable directory path") from e
    owner = preserve_owner and os.geteuid() == 0
    ex = _Extractor(source, root_fd, prefix, owner)
    try:
        layers = source.layers()
        diff_ids = _diff_ids(source, len(layers))
        for i, desc in enumerate(layers):
            ex.where = f"{source.describe()} layer {i} ({desc.digest[:19]})"
            ex.apply(desc, diff_ids[i])
        ex.where, ex.entry = source.describe(), ""
        ex.finish()
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"{dest}: no space left while extracting {source.describe()}",
                           hint="free disk space or extract elsewhere") from e
        raise
    finally:
        ex.close()
        os.close(root_fd)
    if not ex.seen_subtree:
        raise BadInput(f"{source.describe()} has no {subtree}",
                       hint="check the path inside the image (config WorkingDir)")
    return ex.report


def extract_to(source: ImageSource, dest: str | Path, subtree: str | None = None, *,
               preserve_owner: bool = False) -> ExtractReport:
    """`extract` into a temporary directory beside `dest`, renamed onto `dest` only on
    success; on failure the temporary directory is removed and `dest` never appears.

    `dest` must not exist (an empty directory is also accepted)."""
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise BadInput(f"{dest} already exists", hint="remove it or extract elsewhere")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        os.chmod(tmp, 0o755)  # a rootfs default; the image's own root entry overrides it
        report = extract(source, tmp, subtree, preserve_owner=preserve_owner)
        os.rename(tmp, dest)
    except BaseException:
        pfd = os.open(tmp.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _remove_at(pfd, tmp.name, force=True)
        finally:
            os.close(pfd)
        raise
    return report
