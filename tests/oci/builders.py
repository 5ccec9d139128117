"""Synthetic layers and images for the OCI tests: real tar bytes, built with tarfile."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import zstandard

from swebox.oci.image import Descriptor
from swebox.oci.layers import VerifyingReader

MTIME = 1_600_000_000

Entry = tuple[tarfile.TarInfo, bytes | None]


def _info(name: str, kind: bytes, mode: int, mtime: int = MTIME, uid: int = 0,
          gid: int = 0) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = mtime
    ti.uid, ti.gid = uid, gid
    return ti


def file(name: str, data: bytes | str = b"x", mode: int = 0o644, **kw: Any) -> Entry:
    raw = data.encode() if isinstance(data, str) else data
    ti = _info(name, tarfile.REGTYPE, mode, **kw)
    ti.size = len(raw)
    return ti, raw


def dir_(name: str, mode: int = 0o755, **kw: Any) -> Entry:
    return _info(name, tarfile.DIRTYPE, mode, **kw), None


def symlink(name: str, target: str, **kw: Any) -> Entry:
    ti = _info(name, tarfile.SYMTYPE, 0o777, **kw)
    ti.linkname = target
    return ti, None


def hardlink(name: str, target: str, **kw: Any) -> Entry:
    ti = _info(name, tarfile.LNKTYPE, 0o644, **kw)
    ti.linkname = target
    return ti, None


def device(name: str, kind: bytes = tarfile.CHRTYPE) -> Entry:
    ti = _info(name, kind, 0o666)
    ti.devmajor, ti.devminor = 1, 3
    return ti, None


def whiteout(path: str) -> Entry:
    parent, _, name = path.rstrip("/").rpartition("/")
    return file(f"{parent}/.wh.{name}" if parent else f".wh.{name}", b"", 0o600)


def opaque(directory: str) -> Entry:
    directory = directory.strip("/")
    return file(f"{directory}/.wh..wh..opq" if directory else ".wh..wh..opq", b"", 0o600)


def tar_bytes(entries: Iterable[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(raw: bytes, how: str) -> bytes:
    if how == "none":
        return raw
    if how == "gzip":
        return gzip.compress(raw, mtime=0)
    if how == "zstd":
        # Two frames, as parallel compressors write them: read_across_frames must be on.
        half = len(raw) // 2
        c = zstandard.ZstdCompressor()
        return c.compress(raw[:half]) + c.compress(raw[half:])
    if how == "xz":
        return lzma.compress(raw)
    if how == "bzip2":
        return bz2.compress(raw)
    raise ValueError(how)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Layer:
    blob: bytes  # as stored (maybe compressed)
    diff_id: str  # sha256 of the uncompressed tar

    @classmethod
    def of(cls, *entries: Entry, compression: str = "none") -> Layer:
        raw = tar_bytes(entries)
        return cls(compress(raw, compression), sha256(raw))


class MemorySource:
    """An ImageSource over layers held in memory (the test double of an image on disk)."""

    def __init__(self, *layers: Layer, name: str = "test-image") -> None:
        self._layers = list(layers)
        self.name = name
        self.opened: list[str] = []

    def describe(self) -> str:
        return self.name

    def config(self) -> dict[str, Any]:
        return {"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in self._layers]}}

    def layers(self) -> list[Descriptor]:
        return [Descriptor("application/vnd.oci.image.layer.v1.tar", sha256(la.blob),
                           len(la.blob)) for la in self._layers]

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        self.opened.append(desc.digest)
        for la in self._layers:
            if sha256(la.blob) == desc.digest:
                return io.BufferedReader(VerifyingReader(io.BytesIO(la.blob), desc.digest,
                                                         f"blob {desc.digest[:19]}",
                                                         size=desc.size))
        raise KeyError(desc.digest)


def image_config(layers: list[Layer]) -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"WorkingDir": "/testbed", "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in layers]},
    }).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mtime = MTIME
    tar.addfile(ti, io.BytesIO(data))


def docker_archive_legacy(path: Path, images: dict[str, list[Layer]],
                          duplicate_as_symlink: bool = True) -> Path:
    """A `docker save` tarball as Docker <= 24 writes it: `<id>/layer.tar`, `<hex>.json`.

    Layers must be uncompressed. A layer repeated in an image is stored once and linked, as
    Docker does."""
    manifest = []
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        stored: dict[str, str] = {}
        for tag, layers in images.items():
            config = image_config(layers)
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            if config_name not in tar.getnames():
                _add(tar, config_name, config)
            names = []
            for i, la in enumerate(layers):
                layer_id = hashlib.sha256(f"{tag}/{i}/{la.diff_id}".encode()).hexdigest()
                name = f"{layer_id}/layer.tar"
                if la.diff_id in stored and duplicate_as_symlink:
                    ti = tarfile.TarInfo(name)
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = f"../{stored[la.diff_id]}"
                    tar.addfile(ti)
                else:
                    _add(tar, name, la.blob)
                    stored[la.diff_id] = name
                names.append(name)
            manifest.append({"Config": config_name, "RepoTags": [tag] if tag else None,
                             "Layers": names})
        _add(tar, "manifest.json", json.dumps(manifest).encode())
    return path


def docker_archive_25(path: Path, tag: str, layers: list[Layer]) -> Path:
    """A `docker save` tarball as Docker 25+ writes it: an OCI layout plus manifest.json."""
    config = image_config(layers)
    oci_manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(la.blob), "size": len(la.blob)} for la in layers],
    }).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha256(oci_manifest), "size": len(oci_manifest),
        "annotations": {"io.containerd.image.name": f"docker.io/library/{tag}",
                        "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[-1]}}]})
    blobs = {sha256(b): b for b in [config, oci_manifest, *(la.blob for la in layers)]}
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for digest, data in blobs.items():
            _add(tar, f"blobs/sha256/{digest.split(':')[1]}", data)
        _add(tar, "index.json", index.encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "manifest.json", json.dumps([{
            "Config": f"blobs/sha256/{sha256(config).split(':')[1]}", "RepoTags": [tag],
            "Layers": [f"blobs/sha256/{sha256(la.blob).split(':')[1]}" for la in layers],
        }]).encode())
    return path


class OciBuilder:
    """Writes an OCI image layout directory; `archive()` tars it up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.index: list[dict[str, Any]] = []

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = sha256(data)
        (self.root / "blobs" / "sha256" / digest.split(":")[1]).write_bytes(data)
        return {"digest": digest, "size": len(data)}

    def manifest(self, layers: list[Layer], media: str = "application/vnd.oci.image.layer"
                 ".v1.tar+gzip") -> dict[str, Any]:
        config = self.blob(image_config(layers))
        body = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": media, **self.blob(la.blob)} for la in layers],
        }).encode()
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", **self.blob(body)}

    def platform_index(self, by_platform: dict[str, dict[str, Any]]) -> dict[str, Any]:
        manifests = []
        for spec, desc in by_platform.items():
            os_, arch, *variant = spec.split("/")
            plat = {"os": os_, "architecture": arch, **({"variant": variant[0]}
                                                         if variant else {})}
            manifests.append({**desc, "platform": plat})
        body = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": manifests}).encode()
        return {"mediaType": "application/vnd.oci.image.index.v1+json", **self.blob(body)}

    def add(self, desc: dict[str, Any], ref: str | None = None) -> None:
        entry = dict(desc)
        if ref is not None:
            entry["annotations"] = {"org.opencontainers.image.ref.name": ref}
        self.index.append(entry)
        self.write_index()

    def write_index(self) -> None:
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "manifests": self.index}))

    def archive(self, path: Path) -> Path:
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for p in sorted(self.root.rglob("*")):
                if p.is_file():
                    tar.add(p, arcname=str(p.relative_to(self.root)))
        return path


def flip_byte_in_member(archive: Path, member: str, offset_in_member: int) -> None:
    """Corrupt one byte of a member's data inside an uncompressed tar, in place."""
    with tarfile.open(archive) as tar:
        info = tar.getmember(member)
        pos = info.offset_data + offset_in_member
    with archive.open("r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x01]))


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[Any, ...]]:
    """Every path under `root` (but `skip`): type, mode, size, mtime, content digest, links."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip.parent:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            info: tuple[Any, ...] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777,
                                     st.st_nlink, st.st_mtime_ns, st.st_uid)
            if p.is_symlink():
                info += (os.readlink(p),)
            elif p.is_file():
                info += (hashlib.sha256(p.read_bytes()).hexdigest(),)
            out[str(p.relative_to(root))] = info
    return out


def listing(root: Path) -> dict[str, str]:
    """`path -> description` of a tree, for readable equality asserts: `f:<content>`,
    `d`, `l:<target>`."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = f"l:{os.readlink(p)}"
            elif p.is_dir():
                out[rel] = "d"
            elif p.is_file():
                out[rel] = f"f:{p.read_bytes().decode(errors='replace')}"
            else:
                out[rel] = "?"
    return out
