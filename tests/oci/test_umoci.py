"""Real images against an independent oracle: our extraction vs `umoci raw unpack`.

The images come from the local Docker engine (`docker save`, the legacy format on Docker 20.10),
skopeo converts them to an OCI layout, and umoci unpacks that. Both trees must agree on every
path, its type, permission bits, mtime, symlink target, file content and hardlink grouping.

What is not comparable, and why:
* ownership: umoci --rootless leaves everything owned by whoever runs it, so uid/gid are
  checked against the layer's tar headers instead (we extract with preserve_owner=True);
* device nodes: umoci --rootless writes empty regular files in their place, we skip them;
* setuid/setgid: umoci keeps them; we keep them only with preserve_owner=True and drop them
  otherwise (compared with that rule applied).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from swebox.oci.archive import DockerArchive, OciArchive, OciLayout
from swebox.oci.extract import ExtractReport, extract
from tests.conftest import BASE_IMAGE, BUSYBOX_IMAGE

SETUP = "run `bash scripts/testbed.sh`"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed -- {SETUP}", pytrace=False)
    return path


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600,
                          env=env)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): "
                    f"{proc.stderr.strip()[-2000:]}", pytrace=False)
    return proc.stdout


def docker_save(image: str, dest: Path) -> Path:
    docker = tool("docker")
    probe = subprocess.run([docker, "image", "inspect", image], capture_output=True,
                           text=True, timeout=60)
    if probe.returncode != 0:
        pytest.fail(f"image {image} is not in the local Docker engine -- {SETUP} "
                    f"({probe.stderr.strip()[:300]})", pytrace=False)
    run(docker, "save", image, "-o", dest)
    return dest


def umoci_unpack(archive: Path, work: Path) -> tuple[Path, Path]:
    """(OCI layout written by skopeo, rootfs unpacked by umoci) for a docker-archive."""
    layout = work / "oci"
    run(tool("skopeo"), "--insecure-policy", "copy", "-q", f"docker-archive:{archive}",
        f"oci:{layout}:img")
    rootfs = work / "umoci-rootfs"
    run(tool("umoci"), "raw", "unpack", "--rootless", "--image", f"{layout}:img", rootfs)
    return layout, rootfs


def tree(root: Path) -> tuple[dict[str, tuple[Any, ...]], list[list[str]]]:
    """path -> (type, mode, mtime_ns, target or sha256), and hardlink groups."""
    out: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, list[str]] = {}
    paths = [root]  # the root's own mode and mtime come from the image's "./" entry
    for dirpath, dirnames, filenames in os.walk(root):
        paths.extend(Path(dirpath, name) for name in dirnames + filenames)
    for p in paths:
        rel = str(p.relative_to(root))
        st = p.lstat()
        info: tuple[Any, ...] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                 st.st_mtime_ns)
        if stat.S_ISLNK(st.st_mode):
            info += (os.readlink(p),)
        elif stat.S_ISREG(st.st_mode):
            h = hashlib.sha256()
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            info += (h.hexdigest(),)
            if st.st_nlink > 1:
                inodes.setdefault(st.st_ino, []).append(rel)
        out[rel] = info
    # Groups of paths inside this tree (a link to outside a subtree is a group of one).
    return out, sorted(sorted(g) for g in inodes.values() if len(g) > 1)


def device_paths(source: DockerArchive) -> set[str]:
    """Paths of device nodes and fifos in the image's layers."""
    found: set[str] = set()
    for desc in source.layers():
        with source.open_blob(desc) as blob, tarfile.open(fileobj=blob, mode="r|") as tar:
            for m in tar:
                if m.isdev():
                    found.add(os.path.normpath(m.name.lstrip("/")))
    return found


def compare(ours: Path, oracle: Path, devices: set[str], *, setuid_kept: bool) -> int:
    """Assert the trees agree (modulo the documented differences); returns the path count."""
    mine, my_links = tree(ours)
    theirs, their_links = tree(oracle)
    # umoci --rootless stands an empty file in for each device node; we write nothing.
    for path in devices:
        assert path not in mine, path
        kind, _, _, digest = theirs.pop(path)
        assert kind == stat.S_IFREG and digest == hashlib.sha256(b"").hexdigest(), path
    assert sorted(set(mine) - set(theirs)) == []
    assert sorted(set(theirs) - set(mine)) == []
    diffs = []
    for path, want in theirs.items():
        if not setuid_kept and want[0] != stat.S_IFDIR:
            want = (want[0], want[1] & ~0o6000, *want[2:])
        if mine[path] != want:
            diffs.append((path, mine[path], want))
    assert diffs == [], f"{len(diffs)} paths differ (ours, umoci): {diffs[:10]}"
    assert my_links == their_links
    return len(mine)


def check_owners(source: DockerArchive, root: Path) -> int:
    """uid/gid of what we wrote (preserve_owner=True) against the tar headers."""
    checked = 0
    for desc in source.layers():
        with source.open_blob(desc) as blob, tarfile.open(fileobj=blob, mode="r|") as tar:
            for m in tar:
                name = os.path.normpath(m.name.lstrip("/"))
                if m.isdev() or m.islnk() or ".wh." in name:
                    continue
                st = (root / name).lstat() if name != "." else root.lstat()
                assert (st.st_uid, st.st_gid) == (m.uid, m.gid), name
                checked += 1
    return checked


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return docker_save(BUSYBOX_IMAGE, tmp_path_factory.mktemp("busybox") / "busybox.tar")


def test_busybox_matches_umoci(busybox_tar: Path, tmp_path: Path) -> None:
    layout, oracle = umoci_unpack(busybox_tar, tmp_path)
    with DockerArchive(busybox_tar) as src:
        report = extract(src, tmp_path / "ours", preserve_owner=True)
        devices = device_paths(src)
        assert check_owners(src, tmp_path / "ours") > 0
    assert compare(tmp_path / "ours", oracle, devices, setuid_kept=True) > 200
    assert report.files > 0 and report.symlinks > 200
    # skopeo's OCI layout (gzip layers) and an oci-archive of it give the same tree.
    with OciLayout(layout, "img") as oci:
        assert all(d.media_type.endswith("gzip") for d in oci.layers())
        extract(oci, tmp_path / "from-layout", preserve_owner=True)
    compare(tmp_path / "from-layout", oracle, devices, setuid_kept=True)
    archive = tmp_path / "busybox.oci.tar"
    run(tool("skopeo"), "--insecure-policy", "copy", "-q", f"oci:{layout}:img",
        f"oci-archive:{archive}:img")
    with OciArchive(archive) as oci:
        extract(oci, tmp_path / "from-archive", preserve_owner=True)
    compare(tmp_path / "from-archive", oracle, devices, setuid_kept=True)


def test_testbase_matches_umoci(tmp_path: Path) -> None:
    # debootstrap Debian: setuid binaries, hardlinks, device nodes, non-root groups.
    archive = docker_save(BASE_IMAGE, tmp_path / "testbase.tar")
    _, oracle = umoci_unpack(archive, tmp_path)
    with DockerArchive(archive) as src:
        report = extract(src, tmp_path / "ours", preserve_owner=True)
        devices = device_paths(src)
        assert check_owners(src, tmp_path / "ours") > 5000
    assert report.skipped_devices == len(devices) > 0
    assert report.hardlinks > 0
    assert compare(tmp_path / "ours", oracle, devices, setuid_kept=True) > 5000
    archive.unlink()


WHITEOUT_DOCKERFILE = """\
FROM {base}
RUN mkdir -p /x/y /z/keep /o/sub /x/ro && echo a > /x/a && echo b > /x/y/b \\
 && echo k > /z/keep/k && echo 1 > /o/old && echo 2 > /o/sub/s && ln /x/a /x/hard \\
 && ln -s /x/a /x/sym && echo r > /x/ro/r && chmod 0555 /z /x/ro
RUN rm /x/a && rm -r /x/y && rm -rf /o && mkdir /o && echo new > /o/new \\
 && echo v2 > /z/keep/k.tmp && chmod 4755 /x/hard && rm /x/sym && mkdir /x/sym \\
 && echo d > /x/sym/d && rm -r /z/keep && echo f > /z/keep && ln /o/new /x/newlink \\
 && ln -s ../o /x/up
"""


@pytest.fixture(scope="module")
def whiteout_tar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A three-layer image built by Docker from busybox: overlay2 writes real whiteouts,
    opaque markers and hardlinks. Tagged uniquely and removed afterwards."""
    docker = tool("docker")
    work = tmp_path_factory.mktemp("whiteouts")
    (work / "Dockerfile").write_text(WHITEOUT_DOCKERFILE.format(base=BUSYBOX_IMAGE))
    docker_save(BUSYBOX_IMAGE, work / "probe.tar").unlink()  # fails clearly if missing
    tag = f"swebox-test/oci-whiteouts:{uuid.uuid4().hex[:12]}"
    # The classic builder: no BuildKit, nothing pulled, the base comes from the engine.
    run(docker, "build", "-q", "-t", tag, str(work), env={**os.environ, "DOCKER_BUILDKIT": "0"})
    try:
        yield docker_save(tag, work / "whiteouts.tar")
    finally:
        subprocess.run([docker, "rmi", "-f", tag], capture_output=True, timeout=120)


def test_docker_built_whiteouts_match_umoci(whiteout_tar: Path, tmp_path: Path) -> None:
    _, oracle = umoci_unpack(whiteout_tar, tmp_path)
    with DockerArchive(whiteout_tar) as src:
        assert len(src.layers()) == 3
        kept: ExtractReport = extract(src, tmp_path / "kept", preserve_owner=True)
        default = extract(src, tmp_path / "default")
        devices = device_paths(src)
    assert kept.whiteouts >= 4  # .wh.a, .wh.y, two opaque markers
    compare(tmp_path / "kept", oracle, devices, setuid_kept=True)
    compare(tmp_path / "default", oracle, devices, setuid_kept=False)
    assert stat.S_IMODE((tmp_path / "default/x/hard").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "kept/x/hard").stat().st_mode) == 0o4755
    assert default == kept


def test_docker_built_whiteouts_subtree_matches_umoci(whiteout_tar: Path,
                                                      tmp_path: Path) -> None:
    _, oracle = umoci_unpack(whiteout_tar, tmp_path)
    with DockerArchive(whiteout_tar) as src:
        report = extract(src, tmp_path / "x", "/x", preserve_owner=True)
    compare(tmp_path / "x", oracle / "x", set(), setuid_kept=True)
    # x/newlink is a hardlink to /o/new, outside the subtree: its content was copied.
    assert (tmp_path / "x/newlink").read_text() == "new\n"
    assert report.hardlinks >= 1
