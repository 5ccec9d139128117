"""Image sources: docker-archive (legacy and Docker 25+), OCI layouts and OCI archives."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from swebox.errors import BadInput, CorruptData, ImageNotFound
from swebox.oci.archive import (
    DockerArchive,
    OciArchive,
    OciLayout,
    normalize_ref,
    open_source,
)
from swebox.oci.extract import extract
from tests.oci.builders import (
    Layer,
    OciBuilder,
    dir_,
    docker_archive_25,
    docker_archive_legacy,
    file,
    flip_byte_in_member,
    listing,
    opaque,
    sha256,
    whiteout,
)


def two_layers(compression: str = "none") -> list[Layer]:
    return [
        Layer.of(dir_("testbed/"), file("testbed/a.py", "a" * 2000), file("testbed/gone", "g"),
                 dir_("etc/"), file("etc/os-release", "debian"), compression=compression),
        Layer.of(file("testbed/b.py", "b"), whiteout("testbed/gone"), opaque("etc"),
                 file("etc/new", "n"), compression=compression),
    ]


EXPECTED = {"testbed": "d", "testbed/a.py": "f:" + "a" * 2000, "testbed/b.py": "f:b",
            "etc": "d", "etc/new": "f:n"}


def test_normalize_ref() -> None:
    assert normalize_ref("docker.io/library/busybox") == "busybox:latest"
    assert normalize_ref("busybox:1.36") == "busybox:1.36"
    assert normalize_ref("docker.io/swebox/busybox:test") == "swebox/busybox:test"
    assert normalize_ref("localhost:5000/x") == "localhost:5000/x:latest"


# --- docker-archive -------------------------------------------------------------------------


def test_docker_archive_legacy(tmp_path: Path) -> None:
    layers = two_layers()
    path = docker_archive_legacy(tmp_path / "img.tar", {"swebox/app:v1": layers})
    with DockerArchive(path) as src:
        assert src.describe() == f"docker-archive:{path}:swebox/app:v1"
        assert [d.digest for d in src.layers()] == [la.diff_id for la in layers]
        assert src.config()["config"]["WorkingDir"] == "/testbed"
        extract(src, tmp_path / "root")
    assert listing(tmp_path / "root") == EXPECTED


def test_docker_archive_legacy_repeated_layer_is_a_symlink(tmp_path: Path) -> None:
    first = Layer.of(file("x", "1"))
    path = docker_archive_legacy(tmp_path / "img.tar", {
        "a:1": [first, Layer.of(file("y", "2")), first],
    })
    with tarfile.open(path) as tar:
        assert sum(m.issym() for m in tar.getmembers()) == 1
    with DockerArchive(path) as src:
        extract(src, tmp_path / "root")
    assert listing(tmp_path / "root") == {"x": "f:1", "y": "f:2"}


def test_docker_archive_25(tmp_path: Path) -> None:
    path = docker_archive_25(tmp_path / "img.tar", "app:v2", two_layers())
    with open_source(path) as src:
        assert isinstance(src, DockerArchive)
        assert all(d.media_type.startswith("application/vnd.oci") for d in src.layers())
        extract(src, tmp_path / "root")
    assert listing(tmp_path / "root") == EXPECTED
    # The same tarball is a valid OCI archive too.
    with OciArchive(path, "v2") as oci:
        extract(oci, tmp_path / "root2")
    assert listing(tmp_path / "root2") == EXPECTED


def test_docker_archive_selects_by_tag(tmp_path: Path) -> None:
    path = docker_archive_legacy(tmp_path / "img.tar", {
        "busybox:latest": [Layer.of(file("which", "busybox"))],
        "swebox/app:v1": [Layer.of(file("which", "app"))],
    })
    with pytest.raises(BadInput, match="holds 2 images: busybox:latest; swebox/app:v1"):
        DockerArchive(path)
    for ref, want in [("docker.io/library/busybox", "busybox"), ("busybox:latest", "busybox"),
                      ("docker.io/swebox/app:v1", "app")]:
        with DockerArchive(path, ref) as src:
            dest = tmp_path / want / ref.replace("/", "_")
            extract(src, dest)
            assert (dest / "which").read_text() == want
    with pytest.raises(ImageNotFound, match="has no image app:v2; it holds busybox:latest; "
                                            "swebox/app:v1"):
        DockerArchive(path, "app:v2")


def test_docker_archive_layer_byte_flipped(tmp_path: Path) -> None:
    layers = two_layers()
    path = docker_archive_legacy(tmp_path / "img.tar", {"a:1": layers})
    with tarfile.open(path) as tar:
        name = next(n for n in tar.getnames() if n.endswith("layer.tar"))
    flip_byte_in_member(path, name, 600)  # inside testbed/a.py's content
    with DockerArchive(path) as src, pytest.raises(CorruptData, match="digest mismatch"):
        extract(src, tmp_path / "root")


def test_docker_archive_25_blob_byte_flipped(tmp_path: Path) -> None:
    layers = two_layers()
    path = docker_archive_25(tmp_path / "img.tar", "a:1", layers)
    flip_byte_in_member(path, f"blobs/sha256/{sha256(layers[1].blob)[7:]}", 520)
    with DockerArchive(path) as src, pytest.raises(CorruptData, match="layer 1"):
        extract(src, tmp_path / "root")


def test_docker_archive_config_tampered(tmp_path: Path) -> None:
    path = docker_archive_legacy(tmp_path / "img.tar", {"a:1": two_layers()})
    with tarfile.open(path) as tar:
        name = next(n for n in tar.getnames() if n.endswith(".json") and n != "manifest.json")
    flip_byte_in_member(path, name, 3)
    with pytest.raises(CorruptData, match="digest mismatch"):
        DockerArchive(path)


def test_docker_archive_missing_layer_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "broken.tar"
    with tarfile.open(path, "w") as tar:
        data = json.dumps([{"Config": "c.json", "RepoTags": ["x:1"],
                            "Layers": ["abc/layer.tar"]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        cfg = json.dumps({"rootfs": {"diff_ids": [sha256(b"")]}}).encode()
        info = tarfile.TarInfo("c.json")
        info.size = len(cfg)
        tar.addfile(info, io.BytesIO(cfg))
    with pytest.raises(CorruptData, match=r"no member 'abc/layer\.tar'"):
        DockerArchive(path)
    gz = tmp_path / "img.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(BadInput, match="not an uncompressed tar"):
        DockerArchive(gz)
    with pytest.raises(BadInput, match="cannot read"):
        DockerArchive(tmp_path / "nope.tar")


# --- OCI layouts and archives ---------------------------------------------------------------


def test_oci_layout(tmp_path: Path) -> None:
    oci = OciBuilder(tmp_path / "layout")
    oci.add(oci.manifest(two_layers("gzip")), ref="v1")
    oci.add(oci.manifest(two_layers("zstd"), media="application/vnd.oci.image.layer.v1.tar"
                                                   "+zstd"), ref="zstd")
    with pytest.raises(BadInput, match="holds 2 images: v1; zstd"):
        OciLayout(oci.root)
    for ref in ("v1", "zstd"):
        with OciLayout(oci.root, ref) as src:
            assert src.describe() == f"oci:{oci.root}:{ref}"
            extract(src, tmp_path / ref)
        assert listing(tmp_path / ref) == EXPECTED
    with pytest.raises(ImageNotFound, match="has no image named v9; it holds v1; zstd"):
        OciLayout(oci.root, "v9")


def test_oci_layout_platforms(tmp_path: Path) -> None:
    oci = OciBuilder(tmp_path / "layout")
    amd = oci.manifest([Layer.of(file("arch", "amd64"), compression="gzip")])
    arm = oci.manifest([Layer.of(file("arch", "arm64"), compression="gzip")])
    nested = oci.platform_index({"linux/arm64/v8": arm, "linux/amd64": amd})
    oci.add(oci.platform_index({"linux/arm64/v8": nested, "linux/amd64": nested}), ref="multi")
    for platform, want in [("linux/amd64", "amd64"), ("linux/arm64", "arm64"),
                           ("linux/arm64/v8", "arm64")]:
        with OciLayout(oci.root, "multi", platform=platform) as src:
            dest = tmp_path / platform.replace("/", "_")
            extract(src, dest)
            assert (dest / "arch").read_text() == want
    with pytest.raises(ImageNotFound, match="no linux/s390x image; platforms: linux/amd64, "
                                            "linux/arm64/v8"):
        OciLayout(oci.root, "multi", platform="linux/s390x")
    # A platform list written straight into index.json, without names.
    flat = OciBuilder(tmp_path / "flat")
    flat.index = [{**amd, "platform": {"os": "linux", "architecture": "amd64"}},
                  {**arm, "platform": {"os": "linux", "architecture": "arm64"}}]
    for d in (amd, arm):
        shutil.copy(oci.root / "blobs/sha256" / d["digest"][7:],
                    flat.root / "blobs/sha256" / d["digest"][7:])
    shutil.copytree(oci.root / "blobs", flat.root / "blobs", dirs_exist_ok=True)
    flat.write_index()
    with OciLayout(flat.root, platform="linux/arm64") as src:
        extract(src, tmp_path / "flat-arm")
    assert (tmp_path / "flat-arm/arch").read_text() == "arm64"


def test_oci_layout_hostile_digest_and_missing_blob(tmp_path: Path) -> None:
    oci = OciBuilder(tmp_path / "layout")
    oci.index = [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": "sha256:../../../../etc/passwd", "size": 10}]
    oci.write_index()
    with pytest.raises(CorruptData, match="malformed digest"):
        OciLayout(oci.root)
    oci.index = [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "digest": sha256(b"nothing"), "size": 7}]
    oci.write_index()
    with pytest.raises(CorruptData, match="is missing"):
        OciLayout(oci.root)


def test_oci_layout_layer_byte_flipped(tmp_path: Path) -> None:
    layers = two_layers("gzip")
    oci = OciBuilder(tmp_path / "layout")
    oci.add(oci.manifest(layers), ref="v1")
    blob = oci.root / "blobs/sha256" / sha256(layers[0].blob)[7:]
    data = bytearray(blob.read_bytes())
    data[-10] ^= 1  # in the gzip trailer: the decompressed tar may still be intact
    blob.write_bytes(bytes(data))
    with OciLayout(oci.root, "v1") as src, pytest.raises(CorruptData, match="layer 0"):
        extract(src, tmp_path / "root")


def test_oci_manifest_tampered(tmp_path: Path) -> None:
    oci = OciBuilder(tmp_path / "layout")
    desc = oci.manifest(two_layers())
    oci.add(desc, ref="v1")
    path = oci.root / "blobs/sha256" / desc["digest"][7:]
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion": 3'))
    with pytest.raises(CorruptData, match="digest mismatch"):
        OciLayout(oci.root, "v1")


def test_oci_archive_and_open_source(tmp_path: Path) -> None:
    oci = OciBuilder(tmp_path / "layout")
    oci.add(oci.manifest(two_layers("zstd")), ref="img")
    archive = oci.archive(tmp_path / "img.oci.tar")
    legacy = docker_archive_legacy(tmp_path / "docker.tar", {"x:1": two_layers()})
    cases = [
        (str(oci.root), None, OciLayout), (f"oci:{oci.root}:img", None, OciLayout),
        (str(archive), "img", OciArchive), (f"oci-archive:{archive}:img", None, OciArchive),
        (str(legacy), None, DockerArchive), (f"docker-archive:{legacy}:x:1", None,
                                             DockerArchive),
    ]
    for i, (uri, selector, kind) in enumerate(cases):
        with open_source(uri, selector) as src:
            assert isinstance(src, kind), uri
            extract(src, tmp_path / f"root{i}")
        assert listing(tmp_path / f"root{i}") == EXPECTED, uri


def test_open_source_rejects(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(BadInput, match="is not an uncompressed tar"):
        open_source(tmp_path / "plain.txt")
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w"):
        pass
    with pytest.raises(BadInput, match=r"without manifest\.json or oci-layout"):
        open_source(empty)
    (tmp_path / "dir").mkdir()
    with pytest.raises(BadInput, match="no oci-layout"):
        open_source(tmp_path / "dir")
    with pytest.raises(BadInput, match="does not exist"):
        open_source(tmp_path / "missing.tar")
    with pytest.raises(BadInput, match="unknown transport 'docker'"):
        open_source("docker://busybox:latest")
