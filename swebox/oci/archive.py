"""Image sources on disk: `docker save` tarballs, OCI image layouts and OCI archives.

Tarballs are opened once, seekably, and their member headers indexed; blobs are streamed out of
them with `extractfile`, never loaded whole nor unpacked to disk. Every blob is wrapped in a
`VerifyingReader` against the digest it must have: an OCI descriptor's digest, the
`blobs/sha256/<hex>` name of a Docker 25+ archive member, or for a legacy `<id>/layer.tar` the
config's `rootfs.diff_ids[i]` (the sha256 of the uncompressed tar, which is what it stores).
Sources hold an open file: close them (they are context managers). Not thread-safe: blobs of one
tarball share its file object.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypeVar

from swebox.errors import BadInput, CorruptData, ImageNotFound
from swebox.oci.image import Descriptor, ImageSource
from swebox.oci.layers import VerifyingReader, check_digest

__all__ = ["DockerArchive", "LocalSource", "OciArchive", "OciLayout", "open_source"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"

_INDEXES = {OCI_INDEX, DOCKER_LIST}
_MANIFESTS = {OCI_MANIFEST, DOCKER_MANIFEST}
_JSON_LIMIT = 32 << 20  # manifests, indexes and configs are small; refuse to slurp a layer
_BLOB_NAME = re.compile(r"blobs/(sha256|sha512)/([0-9a-f]+)")
_CONFIG_NAME = re.compile(r"([0-9a-f]{64})\.json")
_MAX_LINKS = 16
_MAX_NESTING = 8


def normalize_ref(ref: str) -> str:
    """`docker.io/library/x` → `x:latest`: the form `docker save` writes in RepoTags."""
    ref = ref.strip()
    if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    if ref.startswith("library/") and ref.count("/") == 1:
        ref = ref[len("library/") :]
    return ref


def _parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise CorruptData(f"{what}: not valid JSON ({e})",
                          hint="the image is damaged; export it again") from None


def _read_limited(f: IO[bytes], what: str) -> bytes:
    with f:
        data = f.read(_JSON_LIMIT + 1)
    if len(data) > _JSON_LIMIT:
        raise CorruptData(f"{what}: larger than {_JSON_LIMIT >> 20} MiB, not a manifest or "
                          "config", hint="the image is damaged or hostile")
    return data


def _verified_bytes(data: bytes, digest: str, what: str) -> bytes:
    alg, hexd = check_digest(digest, what)
    got = hashlib.new(alg, data).hexdigest()
    if got != hexd:
        raise CorruptData(f"{what}: digest mismatch, expected {digest}, got {alg}:{got}",
                          hint="the blob is damaged or altered; export it again")
    return data


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CorruptData(f"{what}: expected a JSON object", hint="the image is damaged")
    return value


class _TarIndex:
    """A tar file opened once, seekable, with member headers indexed by normalised name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed by close())
        except OSError as e:
            raise BadInput(f"cannot read {path}: {e.strerror or e}",
                           hint="check the path and its permissions") from None
        except tarfile.ReadError as e:
            raise BadInput(f"{path} is not an uncompressed tar ({e})",
                           hint="decompress it first (docker save writes plain tar)") from None
        try:
            self.members = {self.norm(m.name): m for m in self._tar.getmembers()}
        except tarfile.TarError as e:
            self._tar.close()
            raise CorruptData(f"{path}: broken tar ({e})",
                              hint="the archive is damaged; export it again") from None

    @staticmethod
    def norm(name: str) -> str:
        return posixpath.normpath("/" + name).lstrip("/")

    def __contains__(self, name: str) -> bool:
        return self.norm(name) in self.members

    def member(self, name: str) -> tarfile.TarInfo:
        """The regular-file member at `name`, following links inside the archive (legacy
        `docker save` stores a repeated layer as a symlink to the first copy)."""
        key = self.norm(name)
        for _ in range(_MAX_LINKS):
            m = self.members.get(key)
            if m is None:
                raise CorruptData(f"{self.path}: no member {name!r}",
                                  hint="the archive is incomplete; export it again")
            if m.issym():
                key = self.norm(posixpath.join(posixpath.dirname(key), m.linkname))
            elif m.islnk():
                key = self.norm(m.linkname)
            elif m.isreg():
                return m
            else:
                raise CorruptData(f"{self.path}: member {name!r} is not a file",
                                  hint="the archive is damaged")
        raise CorruptData(f"{self.path}: member {name!r} links in a loop",
                          hint="the archive is damaged")

    def open(self, name: str) -> IO[bytes]:
        f = self._tar.extractfile(self.member(name))
        assert f is not None  # member() returns regular files only
        return f

    def close(self) -> None:
        self._tar.close()


_S = TypeVar("_S", bound="_Source")


class _Source:
    """What the three sources share: config, layers, closing."""

    _config: dict[str, Any]
    _layers: list[Descriptor]
    _closers: list[Callable[[], None]]

    def describe(self) -> str:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return self._config

    def layers(self) -> list[Descriptor]:
        return list(self._layers)

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class DockerArchive(_Source):
    """A `docker save` tarball: legacy layout (`<id>/layer.tar`) or Docker 25+ (OCI blobs
    plus `manifest.json`). `image` picks among several saved images by RepoTag."""

    def __init__(self, path: str | Path, image: str | None = None, *,
                 _index: _TarIndex | None = None) -> None:
        self.path = Path(path)
        self._closers = []
        self._index = _index or _TarIndex(self.path)
        self._closers.append(self._index.close)
        try:
            self._load(image)
        except BaseException:
            self.close()
            raise

    def _load(self, image: str | None) -> None:
        where = str(self.path)
        if "manifest.json" not in self._index:
            raise BadInput(f"{where} has no manifest.json: not a docker-archive",
                           hint="create it with `docker save IMAGE -o FILE`")
        manifest = _parse_json(_read_limited(self._index.open("manifest.json"), where),
                               f"{where}: manifest.json")
        if not isinstance(manifest, list) or not manifest:
            raise CorruptData(f"{where}: manifest.json lists no image",
                              hint="the archive is damaged; export it again")
        entries = [_obj(e, f"{where}: manifest.json") for e in manifest]
        entry = self._select(entries, image)
        tags = [str(t) for t in entry.get("RepoTags") or []]
        chosen = [t for t in tags if image and normalize_ref(t) == normalize_ref(image)]
        self.tag = (chosen or tags)[0] if tags else None
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list):
            raise CorruptData(f"{where}: manifest.json entry lacks Config or Layers",
                              hint="the archive is damaged; export it again")
        raw = _read_limited(self._index.open(config_name), f"{where}: {config_name}")
        digest = self._member_digest(config_name)
        if digest is not None:
            _verified_bytes(raw, digest, f"{where}: {config_name}")
        self._config = _obj(_parse_json(raw, f"{where}: {config_name}"), config_name)
        diff_ids = (self._config.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_names):
            raise CorruptData(f"{where}: {len(layer_names)} layers but config rootfs.diff_ids "
                              f"lists {len(diff_ids) if isinstance(diff_ids, list) else 'none'}",
                              hint="the archive is damaged; export it again")
        self._names: dict[str, str] = {}
        self._layers = []
        for name, diff_id in zip(layer_names, diff_ids, strict=True):
            if not isinstance(name, str) or not isinstance(diff_id, str):
                raise CorruptData(f"{where}: malformed Layers or diff_ids",
                                  hint="the archive is damaged; export it again")
            member = self._index.member(name)  # fails early on a missing layer
            digest = self._member_digest(name) or diff_id
            check_digest(digest, f"{where}: {name}")
            media = OCI_LAYER if _BLOB_NAME.fullmatch(self._index.norm(name)) else DOCKER_LAYER
            self._names[digest] = name
            self._layers.append(Descriptor(media, digest, member.size,
                                           annotations={"diff_id": diff_id, "path": name}))

    def _select(self, entries: list[dict[str, Any]], image: str | None) -> dict[str, Any]:
        def label(e: dict[str, Any]) -> str:
            tags = e.get("RepoTags") or []
            return ", ".join(tags) if tags else f"untagged {str(e.get('Config'))[:24]}"

        if image is None:
            if len(entries) == 1:
                return entries[0]
            raise BadInput(f"{self.path} holds {len(entries)} images: "
                           f"{'; '.join(label(e) for e in entries)}",
                           hint="choose one by tag")
        want = normalize_ref(image)
        bare = image.removeprefix("sha256:")
        for e in entries:
            if want in {normalize_ref(t) for t in e.get("RepoTags") or []}:
                return e
            config_id = str(e.get("Config", "")).rsplit("/", 1)[-1].removesuffix(".json")
            if len(bare) >= 12 and config_id.startswith(bare):
                return e  # selected by image ID
        raise ImageNotFound(f"{self.path} has no image {image}; it holds "
                            f"{'; '.join(label(e) for e in entries)}",
                            hint="choose one of those tags")

    def _member_digest(self, name: str) -> str | None:
        """The digest a member's name promises: `blobs/<alg>/<hex>` or `<hex>.json`."""
        key = self._index.norm(name)
        m = _BLOB_NAME.fullmatch(key)
        if m:
            return f"{m.group(1)}:{m.group(2)}"
        m = _CONFIG_NAME.fullmatch(key)
        return f"sha256:{m.group(1)}" if m else None

    def describe(self) -> str:
        return f"docker-archive:{self.path}" + (f":{self.tag}" if self.tag else "")

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        name = self._names.get(desc.digest)
        if name is None:
            raise BadInput(f"{self.describe()} has no layer {desc.digest}",
                           hint="pass a descriptor from this source's layers()")
        return io.BufferedReader(VerifyingReader(self._index.open(name), desc.digest,
                                                 f"{self.path}: {name}", size=desc.size))


def _platform(spec: str) -> tuple[str, str, str | None]:
    parts = spec.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadInput(f"platform {spec!r} is not os/arch[/variant]", hint="like linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


class _OciSource(_Source):
    """An OCI image layout, read through `_open` (a directory or a tarball)."""

    path: Path
    ref: str | None

    def _open(self, rel: str) -> IO[bytes]:
        raise NotImplementedError

    def _has(self, rel: str) -> bool:
        raise NotImplementedError

    def _blob(self, digest: str) -> IO[bytes]:
        alg, hexd = check_digest(digest, str(self.path))  # never a path outside blobs/
        rel = f"blobs/{alg}/{hexd}"
        if not self._has(rel):
            raise CorruptData(f"{self.path}: blob {digest} is missing",
                              hint="the layout is incomplete; copy the image again")
        return self._open(rel)

    def _json_blob(self, desc: dict[str, Any]) -> dict[str, Any]:
        digest = desc.get("digest")
        if not isinstance(digest, str):
            raise CorruptData(f"{self.path}: descriptor without a digest",
                              hint="the layout is damaged")
        what = f"{self.path}: blob {digest[:19]}"
        data = _verified_bytes(_read_limited(self._blob(digest), what), digest, what)
        return _obj(_parse_json(data, what), what)

    def _load(self, ref: str | None, platform: str) -> None:
        where = str(self.path)
        if not self._has("oci-layout"):
            raise BadInput(f"{where} has no oci-layout file: not an OCI image layout",
                           hint="create one with `skopeo copy ... oci:DIR:REF`")
        layout = _obj(_parse_json(_read_limited(self._open("oci-layout"), where),
                                  f"{where}: oci-layout"), f"{where}: oci-layout")
        if "imageLayoutVersion" not in layout:
            raise CorruptData(f"{where}: oci-layout lacks imageLayoutVersion",
                              hint="the layout is damaged")
        if not self._has("index.json"):
            raise CorruptData(f"{where}: index.json is missing", hint="the layout is damaged")
        index = _obj(_parse_json(_read_limited(self._open("index.json"), where),
                                 f"{where}: index.json"), f"{where}: index.json")
        want = _platform(platform)
        descs = self._pick_ref([_obj(d, f"{where}: index.json")
                                for d in index.get("manifests") or []], ref)
        # Several candidates with platforms: a multi-platform index written straight into
        # index.json (or one name for several platforms).
        desc = self._pick_platform(descs, want, platform) if len(descs) > 1 else descs[0]
        for _ in range(_MAX_NESTING):
            doc = self._json_blob(desc)
            media = doc.get("mediaType") or desc.get("mediaType")
            if media in _INDEXES or (media not in _MANIFESTS and "manifests" in doc):
                inner = [_obj(d, where) for d in doc.get("manifests") or []]
                desc = self._pick_platform(inner, want, platform)
                continue
            if media in _MANIFESTS or "layers" in doc:
                self._from_manifest(doc)
                return
            raise CorruptData(f"{where}: {desc.get('digest')} is neither an index nor an "
                              f"image manifest ({media})", hint="the layout is damaged")
        raise CorruptData(f"{where}: indexes nested more than {_MAX_NESTING} deep",
                          hint="the layout is damaged or hostile")

    def _pick_ref(self, descs: list[dict[str, Any]], ref: str | None) -> list[dict[str, Any]]:
        """The index.json entries `ref` names (all of them when it is None)."""

        def names(d: dict[str, Any]) -> str:
            ann = d.get("annotations") or {}
            found = [str(ann[k]) for k in (REF_NAME, CONTAINERD_NAME) if k in ann]
            return ", ".join(found) or str(d.get("digest"))[:19]

        if not descs:
            raise CorruptData(f"{self.path}: index.json lists no manifest",
                              hint="the layout is empty or damaged")
        if ref is None:
            if len(descs) == 1 or all("platform" in d for d in descs):
                return descs
            raise BadInput(f"{self.path} holds {len(descs)} images: "
                           f"{'; '.join(names(d) for d in descs)}",
                           hint="choose one by ref name")
        want = normalize_ref(ref)
        found = []
        for d in descs:
            ann = d.get("annotations") or {}
            if ann.get(REF_NAME) == ref or (CONTAINERD_NAME in ann and
                                            normalize_ref(str(ann[CONTAINERD_NAME])) == want):
                found.append(d)
        if not found:
            raise ImageNotFound(f"{self.path} has no image named {ref}; it holds "
                                f"{'; '.join(names(d) for d in descs)}",
                                hint="choose one of those ref names")
        return found

    def _pick_platform(self, descs: list[dict[str, Any]], want: tuple[str, str, str | None],
                       spec: str) -> dict[str, Any]:
        os_, arch, variant = want
        for d in descs:
            p = d.get("platform") or {}
            if (p.get("os") == os_ and p.get("architecture") == arch and
                    (variant is None or p.get("variant") == variant)):
                return d
        have = sorted({"/".join(str(v) for v in (p.get("os"), p.get("architecture"),
                                                 p.get("variant")) if v)
                       for d in descs for p in [d.get("platform") or {}]})
        raise ImageNotFound(f"{self.path} has no {spec} image; platforms: "
                            f"{', '.join(have) or 'none'}", hint="pass platform= one of those")

    def _from_manifest(self, manifest: dict[str, Any]) -> None:
        where = str(self.path)
        cfg = _obj(manifest.get("config"), f"{where}: manifest config")
        self._config = self._json_blob(cfg)
        self._layers = []
        for item in manifest.get("layers") or []:
            d = _obj(item, f"{where}: manifest layers")
            digest, size = d.get("digest"), d.get("size", -1)
            if not isinstance(digest, str) or not isinstance(size, int):
                raise CorruptData(f"{where}: malformed layer descriptor",
                                  hint="the layout is damaged")
            check_digest(digest, where)
            ann = d.get("annotations") or {}
            self._layers.append(Descriptor(str(d.get("mediaType", OCI_LAYER)), digest, size,
                                           annotations={str(k): str(v)
                                                        for k, v in ann.items()}))

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        return io.BufferedReader(VerifyingReader(self._blob(desc.digest), desc.digest,
                                                 f"{self.path}: blob {desc.digest[:19]}",
                                                 size=desc.size))


class OciLayout(_OciSource):
    """An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).

    `ref` matches the `org.opencontainers.image.ref.name` annotation (or containerd's image
    name); with several platforms, `platform` (os/arch[/variant]) picks one."""

    def __init__(self, path: str | Path, ref: str | None = None, *,
                 platform: str = "linux/amd64") -> None:
        self.path = Path(path)
        self.ref = ref
        self._closers = []
        if not self.path.is_dir():
            raise BadInput(f"{self.path} is not a directory",
                           hint="give the directory of an OCI image layout")
        self._load(ref, platform)

    def describe(self) -> str:
        return f"oci:{self.path}" + (f":{self.ref}" if self.ref else "")

    def _has(self, rel: str) -> bool:
        return (self.path / rel).is_file()

    def _open(self, rel: str) -> IO[bytes]:
        try:
            return (self.path / rel).open("rb")
        except OSError as e:
            raise BadInput(f"cannot read {self.path / rel}: {e.strerror}",
                           hint="check the layout's permissions") from None


class OciArchive(_OciSource):
    """An OCI image layout inside a tar file (`skopeo copy ... oci-archive:FILE`), read in
    place like `DockerArchive`."""

    def __init__(self, path: str | Path, ref: str | None = None, *,
                 platform: str = "linux/amd64", _index: _TarIndex | None = None) -> None:
        self.path = Path(path)
        self.ref = ref
        self._closers = []
        self._index = _index or _TarIndex(self.path)
        self._closers.append(self._index.close)
        try:
            self._load(ref, platform)
        except BaseException:
            self.close()
            raise

    def describe(self) -> str:
        return f"oci-archive:{self.path}" + (f":{self.ref}" if self.ref else "")

    def _has(self, rel: str) -> bool:
        return rel in self._index

    def _open(self, rel: str) -> IO[bytes]:
        return self._index.open(rel)


LocalSource = DockerArchive | OciLayout | OciArchive
_TRANSPORTS = ("docker-archive", "oci-archive", "oci")


def open_source(path_or_uri: str | Path, selector: str | None = None, *,
                platform: str = "linux/amd64") -> LocalSource:
    """The image at a path, by what is there: a directory with `oci-layout` (OciLayout), a tar
    with `manifest.json` (DockerArchive) or with `oci-layout` alone (OciArchive).

    Also accepts skopeo-style `docker-archive:PATH[:IMAGE]`, `oci:DIR[:REF]`,
    `oci-archive:PATH[:REF]`. `selector` is the image (RepoTag) or ref name to pick."""
    text = str(path_or_uri)
    kind = None
    transport, sep, rest = text.partition(":")
    if sep and transport in _TRANSPORTS:
        kind = transport
        text, sep, suffix = rest.partition(":")
        if sep:
            if selector is not None and selector != suffix:
                raise BadInput(f"{path_or_uri}: two selectors ({suffix}, {selector})",
                               hint="give the image in the reference or as selector, not both")
            selector = suffix
    elif sep and "/" not in transport and transport and not Path(text).exists():
        raise BadInput(f"{path_or_uri}: unknown transport {transport!r}",
                       hint="local sources are docker-archive:, oci: and oci-archive:; "
                            "registries are read by swebox.oci.registry")
    path = Path(text)
    if kind == "oci" or (kind is None and path.is_dir()):
        return OciLayout(path, selector, platform=platform)
    if not path.exists():
        raise BadInput(f"{path} does not exist", hint="check the path")
    index = _TarIndex(path)
    try:
        if kind == "docker-archive" or (kind is None and "manifest.json" in index):
            return DockerArchive(path, selector, _index=index)
        if kind == "oci-archive" or "oci-layout" in index:
            return OciArchive(path, selector, platform=platform, _index=index)
    except BaseException:
        index.close()
        raise
    index.close()
    raise BadInput(f"{path} is a tar without manifest.json or oci-layout: not an image",
                   hint="create it with `docker save` or `skopeo copy ... oci-archive:FILE`")


if TYPE_CHECKING:  # each source satisfies the protocol the extractor reads

    def _conforms(a: DockerArchive, b: OciLayout, c: OciArchive) -> list[ImageSource]:
        return [a, b, c]
