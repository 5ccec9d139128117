"""Layer application: whiteouts, opaque directories, links, modes, subtrees, and escapes."""

from __future__ import annotations

import os
import stat
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from swebox.errors import BadInput, CorruptData
from swebox.oci.extract import ExtractReport, extract, extract_to
from tests.oci.builders import (
    MTIME,
    Layer,
    MemorySource,
    compress,
    device,
    dir_,
    file,
    hardlink,
    listing,
    opaque,
    sha256,
    snapshot,
    symlink,
    tar_bytes,
    whiteout,
)


def run(tmp_path: Path, *layers: Layer, subtree: str | None = None,
        preserve_owner: bool = False) -> tuple[Path, ExtractReport]:
    dest = tmp_path / "dest"
    report = extract(MemorySource(*layers), dest, subtree, preserve_owner=preserve_owner)
    return dest, report


# --- what gets written ----------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd", "xz", "bzip2"])
def test_files_dirs_links_and_counts(tmp_path: Path, compression: str) -> None:
    layer = Layer.of(
        dir_("etc/"), file("etc/hosts", "127.0.0.1 localhost\n"),
        dir_("usr/bin/", mode=0o755), file("usr/bin/tool", "#!/bin/sh\n", mode=0o755),
        hardlink("usr/bin/tool2", "usr/bin/tool"), symlink("bin", "usr/bin"),
        symlink("etc/abs", "/etc/hosts"), file("/abs/leading-slash", "ok"),
        file("./dot/slash", "ok2"), compression=compression)
    dest, report = run(tmp_path, layer)
    assert listing(dest) == {
        "etc": "d", "etc/hosts": "f:127.0.0.1 localhost\n", "etc/abs": "l:/etc/hosts",
        "usr": "d", "usr/bin": "d", "usr/bin/tool": "f:#!/bin/sh\n",
        "usr/bin/tool2": "f:#!/bin/sh\n", "bin": "l:usr/bin",
        "abs": "d", "abs/leading-slash": "f:ok", "dot": "d", "dot/slash": "f:ok2",
    }
    tool = (dest / "usr/bin/tool").stat()
    assert tool.st_ino == (dest / "usr/bin/tool2").stat().st_ino
    assert tool.st_mode & 0o7777 == 0o755
    assert tool.st_mtime == MTIME
    assert (dest / "etc/abs").lstat().st_mtime == MTIME
    assert report == ExtractReport(files=4, dirs=2, symlinks=2, hardlinks=1, whiteouts=0,
                                 skipped_devices=0, bytes=20 + 10 + 2 + 3, skipped_outside=0)


def test_directory_modes_are_applied_last(tmp_path: Path) -> None:
    # A read-only directory in layer 0 still receives files from its own layer and from
    # layer 1; its mode and mtime are those of its last entry, applied at the end.
    dest, _ = run(tmp_path,
                  Layer.of(dir_("ro/", mode=0o555, mtime=MTIME - 100), file("ro/a", "a"),
                           dir_("ro/sub/", mode=0o500), file("ro/sub/deep", "d")),
                  Layer.of(file("ro/b", "b"), dir_("sticky/", mode=0o1777)))
    assert listing(dest)["ro/b"] == "f:b"
    assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o555
    assert stat.S_IMODE((dest / "ro/sub").stat().st_mode) == 0o500
    assert stat.S_IMODE((dest / "sticky").stat().st_mode) == 0o1777
    assert (dest / "ro").stat().st_mtime == MTIME - 100


def test_root_entry_mode_applies_to_dest(tmp_path: Path) -> None:
    dest, _ = run(tmp_path, Layer.of(dir_("./", mode=0o700), file("a")))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700


def test_setuid_dropped_unless_owner_preserved(tmp_path: Path) -> None:
    layer = Layer.of(file("su", "x", mode=0o4755, uid=1234, gid=4321),
                     file("wall", "y", mode=0o2755), dir_("shared/", mode=0o2775))
    dest, _ = run(tmp_path, layer)
    assert stat.S_IMODE((dest / "su").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "wall").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "shared").stat().st_mode) == 0o2775  # dirs keep setgid
    assert (dest / "su").stat().st_uid == os.geteuid()
    if os.geteuid() != 0:
        pytest.fail("this suite runs as root (scripts/testbed.sh); ownership needs it")
    kept = tmp_path / "kept"
    extract(MemorySource(layer), kept, preserve_owner=True)
    st = (kept / "su").stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o4755, 1234, 4321)


def test_devices_and_fifos_are_skipped_and_counted(tmp_path: Path) -> None:
    dest, report = run(tmp_path,
                       Layer.of(dir_("dev/"), file("dev/null", "lower file")),
                       Layer.of(device("dev/null"), device("dev/sda", tarfile.BLKTYPE),
                                device("dev/fifo", tarfile.FIFOTYPE)))
    assert listing(dest) == {"dev": "d"}  # the lower file at dev/null is replaced, by nothing
    assert report.skipped_devices == 3


def test_unsupported_entry_type_is_corrupt(tmp_path: Path) -> None:
    ti = tarfile.TarInfo("weird")
    ti.type = b"V"  # a GNU volume header: not content
    raw = tar_bytes([(ti, None)])
    with pytest.raises(CorruptData, match="unsupported tar entry type"):
        run(tmp_path, Layer(raw, sha256(raw)))


# --- replacing across layers ----------------------------------------------------------------


def test_file_replaces_dir_and_dir_replaces_file(tmp_path: Path) -> None:
    dest, _ = run(tmp_path,
                  Layer.of(dir_("a/"), file("a/inner", "i"), dir_("a/deep/"), file("a/deep/x"),
                           file("b", "was a file"), symlink("c", "a"), dir_("d/"),
                           file("d/x", "x")),
                  Layer.of(file("a", "now a file"), dir_("b/"), file("b/inside", "in"),
                           dir_("c/"), file("c/real", "r"), symlink("d", "b")))
    assert listing(dest) == {"a": "f:now a file", "b": "d", "b/inside": "f:in", "c": "d",
                             "c/real": "f:r", "d": "l:b"}


def test_symlink_at_final_component_is_replaced_not_followed(tmp_path: Path) -> None:
    dest, _ = run(tmp_path,
                  Layer.of(file("target", "original"), symlink("link", "target")),
                  Layer.of(file("link", "replacement")))
    assert listing(dest) == {"target": "f:original", "link": "f:replacement"}


# --- whiteouts ------------------------------------------------------------------------------


def test_whiteouts_remove_lower_entries(tmp_path: Path) -> None:
    dest, report = run(tmp_path,
                       Layer.of(dir_("x/"), file("x/a", "a"), dir_("x/y/"), file("x/y/b"),
                                symlink("x/s", "a"), file("keep", "k")),
                       Layer.of(whiteout("x/a"), whiteout("x/y"), whiteout("x/s"),
                                whiteout("x/never-existed")))
    assert listing(dest) == {"x": "d", "keep": "f:k"}
    assert report.whiteouts == 4
    assert not any(".wh." in p for p in listing(dest))


def test_whiteout_spares_its_own_layer(tmp_path: Path) -> None:
    # Whatever the order, a layer's own entries are not removed by its own whiteouts.
    dest, _ = run(tmp_path,
                  Layer.of(file("f", "lower")),
                  Layer.of(file("f", "upper"), whiteout("f"), whiteout("g"), file("g", "new")))
    assert listing(dest) == {"f": "f:upper", "g": "f:new"}


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_dir_keeps_only_its_own_layer(tmp_path: Path, marker_first: bool) -> None:
    lower = Layer.of(dir_("o/"), file("o/old", "1"), dir_("o/sub/"), file("o/sub/s", "2"),
                     dir_("o/kept/"), file("o/kept/lower", "3"), file("o/same", "lower"),
                     file("other", "untouched"))
    own = [dir_("o/"), file("o/new", "n"), dir_("o/kept/"), file("o/kept/upper", "u"),
           file("o/same", "upper")]
    marker = [opaque("o")]
    upper = Layer.of(*(marker + own if marker_first else own + marker))
    dest, _ = run(tmp_path, lower, upper)
    # o/kept is this layer's directory, but it is a new one: its lower content is gone too.
    assert listing(dest) == {"o": "d", "o/new": "f:n", "o/kept": "d", "o/kept/upper": "f:u",
                             "o/same": "f:upper", "other": "f:untouched"}


def test_opaque_marker_after_implicit_parents(tmp_path: Path) -> None:
    # No directory entries for o/p in the upper layer: o/p still counts as this layer's.
    dest, _ = run(tmp_path,
                  Layer.of(file("o/p/lower", "l"), file("o/gone", "g")),
                  Layer.of(file("o/p/upper", "u"), opaque("o")))
    assert listing(dest) == {"o": "d", "o/p": "d", "o/p/upper": "f:u"}


def test_opaque_root(tmp_path: Path) -> None:
    dest, _ = run(tmp_path,
                  Layer.of(file("a"), dir_("d/"), file("d/b")),
                  Layer.of(file("c", "c"), opaque("")))
    assert listing(dest) == {"c": "f:c"}


# --- subtrees -------------------------------------------------------------------------------


def base_with_testbed() -> Layer:
    return Layer.of(dir_("etc/"), file("etc/passwd", "root"), dir_("testbed/", mode=0o750),
                    file("testbed/setup.py", "setup"), dir_("testbed/pkg/"),
                    file("testbed/pkg/mod.py", "mod"), symlink("testbed/link", "pkg/mod.py"))


def test_subtree_only_writes_the_subtree_at_dest_root(tmp_path: Path) -> None:
    dest, report = run(tmp_path, base_with_testbed(), subtree="/testbed")
    assert listing(dest) == {"setup.py": "f:setup", "pkg": "d", "pkg/mod.py": "f:mod",
                             "link": "l:pkg/mod.py"}
    assert stat.S_IMODE(dest.stat().st_mode) == 0o750
    assert report.files == 2


def test_subtree_ancestor_whiteout_removes_it(tmp_path: Path) -> None:
    dest, _ = run(tmp_path, base_with_testbed(), Layer.of(whiteout("testbed")),
                  Layer.of(dir_("testbed/"), file("testbed/fresh", "new")),
                  subtree="/testbed")
    assert listing(dest) == {"fresh": "f:new"}


def test_subtree_nested_ancestor_whiteout(tmp_path: Path) -> None:
    dest, _ = run(tmp_path,
                  Layer.of(file("srv/app/testbed/a", "a"), file("srv/other", "o")),
                  Layer.of(whiteout("srv")),
                  Layer.of(file("srv/app/testbed/b", "b")),
                  subtree="/srv/app/testbed")
    assert listing(dest) == {"b": "f:b"}


def test_subtree_root_opaque_in_later_layer(tmp_path: Path) -> None:
    # An opaque root hides the lower /testbed; the layer's own /testbed entries stay,
    # including those before the marker in the tar.
    dest, _ = run(tmp_path, base_with_testbed(),
                  Layer.of(dir_("testbed/"), file("testbed/kept", "k"), opaque(""),
                           file("testbed/after", "a")),
                  subtree="/testbed")
    assert listing(dest) == {"kept": "f:k", "after": "f:a"}


def test_subtree_opaque_inside(tmp_path: Path) -> None:
    dest, _ = run(tmp_path, base_with_testbed(),
                  Layer.of(file("testbed/pkg/new.py", "n"), opaque("testbed/pkg")),
                  subtree="/testbed")
    assert listing(dest) == {"setup.py": "f:setup", "pkg": "d", "pkg/new.py": "f:n",
                             "link": "l:pkg/mod.py"}


def test_subtree_replaced_by_file_then_recreated(tmp_path: Path) -> None:
    dest, _ = run(tmp_path, base_with_testbed(), Layer.of(file("testbed", "a file")),
                  subtree="/testbed")
    assert listing(dest) == {}
    dest2 = tmp_path / "again"
    extract(MemorySource(base_with_testbed(), Layer.of(file("testbed", "a file")),
                         Layer.of(dir_("testbed/"), file("testbed/z", "z"))), dest2,
            "/testbed")
    assert listing(dest2) == {"z": "f:z"}


def test_subtree_missing_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="has no /nope"):
        run(tmp_path, base_with_testbed(), subtree="/nope")


def test_subtree_symlink_leading_out_is_skipped(tmp_path: Path) -> None:
    dest, report = run(tmp_path,
                       Layer.of(dir_("opt/venv/"), symlink("testbed/venv", "/opt/venv"),
                                symlink("testbed/up", "../etc"), file("testbed/a", "a")),
                       Layer.of(file("testbed/venv/lib.py", "lib"), file("testbed/up/x", "x")),
                       subtree="/testbed")
    assert listing(dest) == {"venv": "l:/opt/venv", "up": "l:../etc", "a": "f:a"}
    assert report.skipped_outside == 2


def test_subtree_hardlinks_to_outside_are_copied(tmp_path: Path) -> None:
    source = MemorySource(
        Layer.of(file("usr/lib/big.so", "shared content", mode=0o755),
                 dir_("testbed/"), hardlink("testbed/copy1", "usr/lib/big.so"),
                 hardlink("testbed/copy2", "/usr/lib/big.so"),
                 hardlink("usr/lib/alias.so", "usr/lib/big.so"),
                 hardlink("testbed/via-alias", "usr/lib/alias.so"),
                 file("testbed/own", "own"), hardlink("testbed/own2", "testbed/own")))
    dest = tmp_path / "dest"
    report = extract(source, dest, "/testbed")
    assert listing(dest) == {"copy1": "f:shared content", "copy2": "f:shared content",
                             "via-alias": "f:shared content", "own": "f:own",
                             "own2": "f:own"}
    inodes = {(dest / n).stat().st_ino for n in ("copy1", "copy2", "via-alias")}
    assert len(inodes) == 1  # still one file, as in the image
    assert stat.S_IMODE((dest / "copy1").stat().st_mode) == 0o755
    assert report.hardlinks == 4
    assert len(source.opened) == 2  # the layer was read a second time for the content


def test_subtree_hardlink_to_unknown_outside_target_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptData, match="not a file of this layer"):
        run(tmp_path, Layer.of(dir_("testbed/"), hardlink("testbed/h", "usr/missing")),
            subtree="/testbed")


# --- corrupt streams ------------------------------------------------------------------------


def test_layer_digest_mismatch(tmp_path: Path) -> None:
    good = Layer.of(file("a", "x" * 5000))
    bad = bytearray(good.blob)
    bad[600] ^= 1  # inside a's content: the tar still parses
    source = MemorySource(Layer(bytes(bad), good.diff_id))
    with pytest.raises(CorruptData, match="digest mismatch"):
        extract(source, tmp_path / "dest")


def test_damaged_header_mid_archive_is_not_a_silent_end(tmp_path: Path) -> None:
    raw = bytearray(tar_bytes([file(f"f{i}", "z" * 700) for i in range(4)]))
    raw[raw.index(b"f2\0") + 100] ^= 0xFF  # the mode field of f2's header: bad checksum
    with pytest.raises(CorruptData, match="damaged tar header"):
        run(tmp_path, Layer(bytes(raw), sha256(bytes(raw))))


def test_truncated_gzip_layer(tmp_path: Path) -> None:
    raw = tar_bytes([file("a", os.urandom(50_000))])
    blob = compress(raw, "gzip")[:-100]
    with pytest.raises(CorruptData):
        run(tmp_path, Layer(blob, sha256(raw)))


def test_not_a_layer(tmp_path: Path) -> None:
    with pytest.raises(CorruptData, match="not a tar, gzip or zstd"):
        run(tmp_path, Layer(b"PK\x03\x04 a zip file" * 40, sha256(b"")))


def test_uncompressed_digest_checked_against_diff_id(tmp_path: Path) -> None:
    # The stored blob matches its own digest, but not the config's diff_id.
    layer = Layer.of(file("a", "content"), compression="gzip")
    with pytest.raises(CorruptData, match=r"\(uncompressed\): digest mismatch"):
        run(tmp_path, Layer(layer.blob, sha256(b"something else")))


def test_parent_that_is_a_file_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptData, match="parent f is not a directory"):
        run(tmp_path, Layer.of(file("f", "x"), file("f/child", "y")))


def test_hardlink_to_directory_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptData, match="is a directory"):
        run(tmp_path, Layer.of(dir_("d/"), hardlink("h", "d")))


def test_deep_tree_removed_without_recursion(tmp_path: Path) -> None:
    deep = "/".join(["a"] * 1200)  # deeper than Python's recursion limit
    dest, _ = run(tmp_path, Layer.of(file(f"top/{deep}/leaf", "x"), file("keep", "k")),
                  Layer.of(whiteout("top")))
    assert listing(dest) == {"keep": "f:k"}


# --- extract_to -----------------------------------------------------------------------------


def test_extract_to_renames_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "rootfs"
    report = extract_to(MemorySource(Layer.of(dir_("ro/", mode=0o500), file("ro/a", "a"))),
                        dest)
    assert listing(dest) == {"ro": "d", "ro/a": "f:a"}
    assert report.files == 1
    assert sorted(p.name for p in dest.parent.iterdir()) == ["rootfs"]
    with pytest.raises(BadInput, match="already exists"):
        extract_to(MemorySource(Layer.of(file("b"))), dest)


def test_extract_to_removes_partial_tree_on_failure(tmp_path: Path) -> None:
    source = MemorySource(Layer.of(dir_("ro/", mode=0o500), file("ro/a", "a")),
                          Layer.of(file("b", "b"), file("../escape", "e")))
    with pytest.raises(CorruptData):
        extract_to(source, tmp_path / "rootfs")
    assert list(tmp_path.iterdir()) == []


def test_extract_to_subtree_failures_leave_nothing(tmp_path: Path) -> None:
    source = MemorySource(Layer.of(dir_("testbed/ro/", mode=0o500),
                                   file("testbed/ro/f", "f", mode=0o400)),
                          Layer.of(symlink("testbed/x", "y"), symlink("testbed/y", "x"),
                                   file("testbed/x/boom")))
    with pytest.raises(CorruptData, match="too many levels"):
        extract_to(source, tmp_path / "rootfs", "/testbed")
    with pytest.raises(BadInput, match="has no /srv"):
        extract_to(source, tmp_path / "rootfs", "/srv")
    assert list(tmp_path.iterdir()) == []


def test_memory_stays_flat(tmp_path: Path) -> None:
    big = os.urandom(1 << 20) * 48  # 48 MiB file in a gzip layer
    layer = Layer.of(file("big", big), compression="gzip")
    source = MemorySource(layer)
    del big
    tracemalloc.start()
    try:
        extract(source, tmp_path / "dest")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "dest/big").stat().st_size == 48 << 20
    assert peak < 12 << 20, f"peak Python allocations {peak >> 20} MiB"


# --- escapes: nothing outside dest may change -----------------------------------------------


@pytest.fixture
def jail(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(root, dest, outside): dest nested three levels below root, a canary beside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary").write_text("canary")
    (outside / "passwd").write_text("host passwd")
    dest = tmp_path / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    return tmp_path, dest, outside


def escape(jail: tuple[Path, Path, Path], *layers: Layer, subtree: str | None = None,
           corrupt: str | None) -> Path:
    """Extract; assert CorruptData matching `corrupt` (or success when None) and that
    nothing outside dest changed."""
    root, dest, outside = jail
    before = snapshot(root, skip=dest)
    if corrupt is None:
        extract(MemorySource(*layers), dest, subtree)
    else:
        with pytest.raises(CorruptData, match=corrupt) as info:
            extract(MemorySource(*layers), dest, subtree)
        assert "layer" in str(info.value)
    assert snapshot(root, skip=dest) == before
    assert (outside / "canary").stat().st_nlink == 1
    return dest


def test_escape_dotdot_path(jail: tuple[Path, Path, Path]) -> None:
    escape(jail, Layer.of(file("../../../outside/canary", "pwned")), corrupt="'..'")
    escape(jail, Layer.of(file("ok"), file("a/../../x", "pwned")), corrupt="a/../../x")


def test_escape_absolute_path_with_dotdot(jail: tuple[Path, Path, Path]) -> None:
    escape(jail, Layer.of(file("/../../../outside/canary", "pwned")), corrupt="climbs")


def test_escape_error_names_layer_and_entry(jail: tuple[Path, Path, Path]) -> None:
    with pytest.raises(CorruptData, match=r"layer 1 \(sha256:.*entry '\.\./evil'"):
        extract(MemorySource(Layer.of(file("fine")), Layer.of(file("../evil"))), jail[1])


def test_symlink_parent_absolute_is_resolved_inside(jail: tuple[Path, Path, Path]) -> None:
    # Chroot semantics: a symlink to an absolute host path means that path inside dest.
    _, dest, outside = jail
    dest = escape(jail, Layer.of(symlink("link", str(outside))),
                  Layer.of(file("link/passwd", "pwned"), file("link/new", "new")),
                  corrupt=None)
    inner = dest / str(outside).lstrip("/")
    assert (inner / "passwd").read_text() == "pwned"
    assert (inner / "new").read_text() == "new"


def test_symlink_parent_relative_is_clamped(jail: tuple[Path, Path, Path]) -> None:
    dest = escape(jail, Layer.of(symlink("link", "../../../outside"), file("link/canary", "x")),
                  corrupt=None)
    assert (dest / "outside/canary").read_text() == "x"  # `..` stops at dest


def test_symlink_parent_chain_and_loop(jail: tuple[Path, Path, Path]) -> None:
    _, dest, outside = jail
    escape(jail, Layer.of(symlink("a", "b/../../c"), symlink("b", "/"),
                          symlink("c", str(outside.parent)), file("a/outside/passwd", "p")),
           corrupt=None)
    assert (dest / str(outside).lstrip("/") / "passwd").read_text() == "p"
    escape(jail, Layer.of(symlink("x", "y"), symlink("y", "x"), file("x/f")),
           corrupt="too many levels of symbolic links")


def test_symlink_parent_in_subtree_never_leaves(jail: tuple[Path, Path, Path]) -> None:
    escape(jail, Layer.of(symlink("testbed/link", "../../../outside"),
                          file("testbed/link/canary", "x")), subtree="/testbed", corrupt=None)


def test_escape_hardlink_outside(jail: tuple[Path, Path, Path]) -> None:
    _, _, outside = jail
    escape(jail, Layer.of(hardlink("h", "../../../outside/canary")), corrupt="climbs")
    # An absolute target means that path inside dest, where it does not exist.
    escape(jail, Layer.of(hardlink("h", str(outside / "canary"))),
           corrupt="not extracted before it")


def test_escape_hardlink_through_symlink(jail: tuple[Path, Path, Path]) -> None:
    _, _, outside = jail
    escape(jail, Layer.of(symlink("link", str(outside))),
           Layer.of(hardlink("h", "link/canary")), corrupt="not extracted before it")
    escape(jail, Layer.of(symlink("rel", "../../../outside"), hardlink("h", "rel/canary")),
           corrupt="not extracted before it")


def test_hardlink_to_symlink_links_the_symlink(jail: tuple[Path, Path, Path]) -> None:
    _, dest, outside = jail
    escape(jail, Layer.of(symlink("s", str(outside / "canary")), hardlink("h", "s")),
           corrupt=None)
    assert os.readlink(dest / "h") == str(outside / "canary")
    assert (dest / "h").lstat().st_ino == (dest / "s").lstat().st_ino


def test_escape_hardlink_not_yet_extracted(jail: tuple[Path, Path, Path]) -> None:
    escape(jail, Layer.of(hardlink("h", "later"), file("later")), corrupt="not extracted")


def test_escape_whiteout_dotdot(jail: tuple[Path, Path, Path]) -> None:
    escape(jail, Layer.of(file("x")), Layer.of(file("../../../outside/.wh.canary", "")),
           corrupt="climbs")
    escape(jail, Layer.of(file("x")), Layer.of(file("d/../../.wh.canary", "")),
           corrupt="climbs")
    escape(jail, Layer.of(file("x")), Layer.of(file(".wh...", "")), corrupt="malformed")


def test_whiteout_through_symlink_stays_inside(jail: tuple[Path, Path, Path]) -> None:
    _, dest, outside = jail
    escape(jail, Layer.of(symlink("link", str(outside)), symlink("rel", "../../../outside")),
           Layer.of(whiteout("link/canary"), whiteout("rel/canary"), opaque("link"),
                    opaque("rel")), corrupt=None)
    assert listing(dest) == {"link": f"l:{outside}", "rel": "l:../../../outside"}


def test_file_over_planted_symlink_stays_inside(jail: tuple[Path, Path, Path]) -> None:
    _, dest, outside = jail
    escape(jail, Layer.of(symlink("f", str(outside / "canary")), symlink("d", str(outside))),
           Layer.of(file("f", "replaced"), dir_("d/"), file("d/x", "x")), corrupt=None)
    assert listing(dest) == {"f": "f:replaced", "d": "d", "d/x": "f:x"}


def test_escape_device_node_skipped(jail: tuple[Path, Path, Path]) -> None:
    _, dest, _ = jail
    escape(jail, Layer.of(device("dev/null"), device("../../../outside/evil")),
           corrupt="climbs")
    dest = escape(jail, Layer.of(device("dev/null"), device("dev/sda", tarfile.BLKTYPE)),
                  corrupt=None)
    assert not (dest / "dev/null").exists() and not (dest / "dev/sda").exists()
