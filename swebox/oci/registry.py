"""Images straight from a registry over the OCI distribution API, without a container engine.

`RegistryClient` speaks to one registry: plain HTTP for loopback hosts (or when asked), HTTPS
otherwise; anonymous, `Basic` or `Bearer` token auth (tokens fetched from the challenge's realm
and cached per scope); retries with exponential back-off on 429, 5xx and connection errors.
`RegistrySource` is an `ImageSource` for one reference: it resolves manifest lists and OCI
indexes to a platform, checks every manifest and blob against its digest, and streams layer
blobs (following the registry's redirects to its storage) without holding them in memory.

Names, credentials and auth are in `swebox.oci.registry_auth`; retries, redirects, streamed
bodies and error mapping in `swebox.oci.registry_http`; `RegistryClient` mixes both in.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Mapping
from typing import IO, Any, cast

import httpx

from swebox.errors import CorruptData, ImageNotFound, SweboxError
from swebox.images.reference import ImageRef
from swebox.oci.image import Descriptor
from swebox.oci.layers import VerifyingReader, check_digest
from swebox.oci.registry_auth import api_host, docker_config_auth, is_loopback, repo_path
from swebox.oci.registry_http import _CHUNK, _registry_errors, _RegistryHTTP, _ResponseStream

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))

DEFAULT_PLATFORM = "linux/amd64"
_MAX_MANIFEST = 8 << 20  # bytes; a manifest larger than this is not a manifest
_MAX_CONFIG = 64 << 20
_MAX_INDEX_DEPTH = 4


# --- small helpers ----------------------------------------------------------------------------


def _check_digest(body: bytes, digest: str, what: str) -> None:
    alg, want = check_digest(digest, what)
    got = hashlib.new(alg, body).hexdigest()
    if got != want:
        raise CorruptData(f"{what}: digest mismatch, expected {digest}, got {alg}:{got}",
                          hint="the registry or the network damaged it; fetch it again, or "
                               "re-push the image")


def parse_platform(platform: str) -> tuple[str, str, str | None]:
    """`os/arch[/variant]` → its parts (variant None when not given)."""
    parts = platform.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SweboxError(f"bad platform {platform!r}",
                          hint="use os/arch or os/arch/variant, e.g. linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _platform_text(p: Mapping[str, Any]) -> str:
    out = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
    return out + (f"/{p['variant']}" if p.get("variant") else "")


# --- the client -------------------------------------------------------------------------------


class RegistryClient(_RegistryHTTP):
    """A client for one registry's distribution API (`/v2/...`), reading only.

    `registry` is the registry as written in references (`ghcr.io`, `docker.io`,
    `127.0.0.1:5055`). Plain HTTP is used for loopback hosts or when `insecure` is true.
    Credentials: `auth`, else `docker login`'s entry in config.json, else anonymous."""

    def __init__(self, registry: str, *, insecure: bool | None = None,
                 auth: tuple[str, str] | None = None, timeout: float = 60.0,
                 attempts: int = 5, backoff: float = 0.5, max_backoff: float = 8.0,
                 max_retry_after: float = 30.0) -> None:
        if attempts < 1:
            raise SweboxError(f"attempts must be at least 1, not {attempts}")
        self.registry = registry
        self.host = api_host(registry)
        loopback = is_loopback(self.host)
        plain = insecure if insecure is not None else loopback
        self.base_url = f"{'http' if plain else 'https'}://{self.host}"
        self.insecure = plain
        self._auth = auth if auth is not None else docker_config_auth(registry)
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (token, expiry)
        self._basic = False  # the registry asked for Basic auth
        # Proxy settings from the environment do not apply to a registry on this machine.
        self._http = httpx.Client(timeout=timeout, follow_redirects=False,
                                  trust_env=not loopback)
        self.token_requests = 0  # tokens fetched so far (for callers that report on auth)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    # ---- the API

    def _scope(self, repo: str) -> str:
        return f"repository:{repo}:pull"

    def _tags(self, repo: str) -> list[str] | None:
        """The repository's tags, [] if they cannot be listed, None if it does not exist."""
        try:
            response = self.request("GET", f"/v2/{repo}/tags/list", scope=self._scope(repo),
                                    what=f"the tags of {self.registry}/{repo}")
        except SweboxError:
            return []
        with contextlib.closing(response):
            response.read()
        if response.status_code == 404 and "NAME_UNKNOWN" in _registry_errors(response):
            return None
        try:
            tags = response.json().get("tags") if response.is_success else None
        except (ValueError, AttributeError):
            tags = None
        return [str(t) for t in tags] if isinstance(tags, list) else []

    def fetch_manifest(self, repo: str, reference: str) -> tuple[Descriptor, dict[str, Any]]:
        """The manifest (or index) `reference` (tag or digest) names, checked against its digest,
        without resolving indexes."""
        name = f"{self.registry}/{repo}{'@' if ':' in reference else ':'}{reference}"
        what = f"the manifest of {name}"
        response = self.request("GET", f"/v2/{repo}/manifests/{reference}",
                                scope=self._scope(repo), what=what,
                                headers={"Accept": ACCEPT})
        if response.status_code == 404:
            response.read()
            response.close()
            tags = None if "NAME_UNKNOWN" in _registry_errors(response) else self._tags(repo)
            if tags is None:
                missing = f"image {name} not found: no repository {repo} on {self.registry}"
            else:
                shown = ", ".join(tags[:10]) + (", ..." if len(tags) > 10 else "")
                missing = (f"image {name} not found: {repo} has no manifest {reference} "
                           f"(its tags: {shown or 'none'})")
            raise ImageNotFound(missing, hint="check the name and tag, or push the image first")
        self.raise_for(response, what, missing=f"image {name} not found")
        with contextlib.closing(response):
            chunks: list[bytes] = []
            total = 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > _MAX_MANIFEST:
                    raise CorruptData(f"{what} is larger than {_MAX_MANIFEST} bytes",
                                      hint="this is not an image manifest")
                chunks.append(chunk)
        body = b"".join(chunks)
        header_digest = response.headers.get("docker-content-digest")
        if ":" in reference:
            _check_digest(body, reference, what)
            digest = reference
        elif header_digest:
            _check_digest(body, header_digest, what)
            digest = header_digest
        else:
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        try:
            manifest = json.loads(body)
        except ValueError as e:
            raise CorruptData(f"{what} is not JSON: {e}", hint="the registry is at fault") from None
        if not isinstance(manifest, dict):
            raise CorruptData(f"{what} is not a JSON object", hint="the registry is at fault")
        content_type = response.headers.get("content-type", "").split(";")[0].strip()
        media_type = manifest.get("mediaType") or content_type
        if media_type in DOCKER_SCHEMA1 or manifest.get("schemaVersion") == 1:
            raise SweboxError(f"{name} has a Docker schema 1 manifest, which swebox does not read",
                              hint="re-push the image with a current docker or podman")
        if media_type not in INDEX_TYPES + MANIFEST_TYPES:
            if "manifests" in manifest:
                media_type = OCI_INDEX
            elif "layers" in manifest and "config" in manifest:
                media_type = OCI_MANIFEST
            else:
                raise SweboxError(f"{what} has an unsupported media type {media_type!r}",
                                  hint="only OCI and Docker v2 images are supported")
        return Descriptor(media_type, digest, len(body)), manifest

    def manifest(self, repo: str, reference: str, *, platform: str | None = DEFAULT_PLATFORM,
                 ) -> tuple[Descriptor, dict[str, Any]]:
        """The image manifest `reference` names; a manifest list or OCI index is resolved to
        `platform` (`os/arch[/variant]`; without a variant any variant matches). With
        `platform=None` an index is returned as it is."""
        desc, manifest = self.fetch_manifest(repo, reference)
        if platform is None:
            return desc, manifest
        want = parse_platform(platform)
        depth = 0
        while desc.media_type in INDEX_TYPES:
            depth += 1
            if depth > _MAX_INDEX_DEPTH:
                raise SweboxError(f"{self.registry}/{repo}:{reference}: indexes nested too deep",
                                  hint="the image is malformed; re-push it")
            child = select_platform(manifest, want)
            if child is None:
                available = sorted({_platform_text(m.get("platform") or {})
                                    for m in manifest.get("manifests") or []
                                    if isinstance(m, dict)} - {"unknown/unknown"})
                raise ImageNotFound(f"{self.registry}/{repo}:{reference} has no {platform} "
                                    f"image (it has: {', '.join(available) or 'none'})",
                                    hint="choose one of those platforms")
            desc, manifest = self.fetch_manifest(repo, child)
        if desc.media_type not in MANIFEST_TYPES:
            raise SweboxError(f"{self.registry}/{repo}:{reference}: unexpected media type "
                              f"{desc.media_type}", hint="only OCI and Docker v2 images work")
        return desc, manifest

    def open_blob(self, repo: str, desc: Descriptor) -> IO[bytes]:
        """A stream of the blob's stored bytes, checked against `desc.digest` as it is read
        (CorruptData at the end on a mismatch). Close it when done."""
        what = f"blob {desc.digest} of {self.registry}/{repo}"
        check_digest(desc.digest, what)
        response = self.request("GET", f"/v2/{repo}/blobs/{desc.digest}",
                                scope=self._scope(repo), what=what,
                                headers={"Accept-Encoding": "identity"})
        self.raise_for(response, what, missing=f"{what} not found (the registry lost it)")
        length = response.headers.get("content-length")
        if desc.size >= 0 and length and length.isdigit() and int(length) != desc.size \
                and not response.headers.get("content-encoding"):
            response.close()
            raise CorruptData(f"{what} is {length} bytes, not the {desc.size} its manifest says",
                              hint="the registry is at fault; re-push the image")
        raw = cast(IO[bytes], _ResponseStream(response, what))
        return io.BufferedReader(VerifyingReader(raw, desc.digest, what, size=desc.size), _CHUNK)

    def read_blob(self, repo: str, desc: Descriptor, *, limit: int = _MAX_CONFIG) -> bytes:
        """A small blob (a config) whole, digest-checked."""
        with self.open_blob(repo, desc) as stream:
            data = stream.read(limit + 1)
            if len(data) > limit:
                raise CorruptData(f"blob {desc.digest} of {self.registry}/{repo} is larger than "
                                  f"{limit} bytes", hint="this is not an image config")
            while stream.read(_CHUNK):  # reach EOF so the digest is checked
                pass
        return data


def select_platform(index: Mapping[str, Any], want: tuple[str, str, str | None]) -> str | None:
    """The digest of the index entry for platform `want` (os, arch, variant or None)."""
    os_, arch, variant = want
    matches = []
    for entry in index.get("manifests") or []:
        if not isinstance(entry, dict) or not entry.get("digest"):
            continue
        p = entry.get("platform") or {}
        if p.get("os") != os_ or p.get("architecture") != arch:
            continue
        if variant is not None and (p.get("variant") or "") != variant \
                and not (arch == "arm64" and variant == "v8" and not p.get("variant")):
            continue
        matches.append(entry)
    if not matches:
        return None
    # With no variant asked for, prefer an entry that names none (the plain one).
    if variant is None:
        matches.sort(key=lambda e: bool((e.get("platform") or {}).get("variant")))
    return str(matches[0]["digest"])


# --- the image source ---------------------------------------------------------------------------


class RegistrySource:
    """An `ImageSource` reading one image reference from its registry."""

    def __init__(self, reference: str, client: RegistryClient | None = None,
                 platform: str = DEFAULT_PLATFORM) -> None:
        self.ref = ImageRef.parse(reference)
        self.repo = repo_path(self.ref)
        self.platform = platform
        parse_platform(platform)
        self._own_client = client is None
        self.client = client if client is not None else RegistryClient(self.ref.domain)
        self._manifest: tuple[Descriptor, dict[str, Any]] | None = None
        self._config: dict[str, Any] | None = None

    def describe(self) -> str:
        return self.ref.normalized()

    def close(self) -> None:
        """Close the client if this source made it (a client passed in stays open)."""
        if self._own_client:
            self.client.close()

    def __enter__(self) -> RegistrySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def reference(self) -> str:
        """The tag or digest asked for (a digest wins over a tag)."""
        return self.ref.digest or self.ref.tag or "latest"

    def manifest(self) -> tuple[Descriptor, dict[str, Any]]:
        """The image manifest for the platform, and its descriptor (fetched once)."""
        if self._manifest is None:
            self._manifest = self.client.manifest(self.repo, self.reference,
                                                  platform=self.platform)
        return self._manifest

    @property
    def digest(self) -> str:
        """The digest of the platform's image manifest."""
        return self.manifest()[0].digest

    def config_descriptor(self) -> Descriptor:
        _, manifest = self.manifest()
        return _descriptor(manifest.get("config"), f"the config of {self.describe()}")

    def config(self) -> dict[str, Any]:
        if self._config is None:
            desc = self.config_descriptor()
            data = self.client.read_blob(self.repo, desc)
            try:
                config = json.loads(data)
            except ValueError as e:
                raise CorruptData(f"the config of {self.describe()} is not JSON: {e}",
                                  hint="the image is malformed; re-push it") from None
            if not isinstance(config, dict):
                raise CorruptData(f"the config of {self.describe()} is not a JSON object",
                                  hint="the image is malformed; re-push it")
            self._config = config
        return self._config

    def layers(self) -> list[Descriptor]:
        _, manifest = self.manifest()
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            raise CorruptData(f"the manifest of {self.describe()} has no layer list",
                              hint="the image is malformed; re-push it")
        return [_descriptor(entry, f"a layer of {self.describe()}") for entry in layers]

    def open_blob(self, desc: Descriptor) -> IO[bytes]:
        return self.client.open_blob(self.repo, desc)

    def size(self) -> int:
        """Compressed bytes a pull transfers: the layers plus the config."""
        return sum(max(d.size, 0) for d in self.layers()) + max(self.config_descriptor().size, 0)


def _descriptor(entry: Any, what: str) -> Descriptor:
    if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
        raise CorruptData(f"{what} has no digest in its manifest",
                          hint="the image is malformed; re-push it")
    size = entry.get("size")
    annotations = entry.get("annotations") or {}
    if entry.get("urls"):
        annotations = {**annotations, "swebox.urls": " ".join(map(str, entry["urls"]))}
    return Descriptor(media_type=str(entry.get("mediaType") or ""), digest=entry["digest"],
                      size=size if isinstance(size, int) else -1,
                      annotations={str(k): str(v) for k, v in annotations.items()})


def image_size(reference: str, *, client: RegistryClient | None = None,
               platform: str = DEFAULT_PLATFORM) -> int:
    """Compressed size of an image in its registry (layers + config), to estimate disk needs
    before a pull; reads only the manifest."""
    with RegistrySource(reference, client=client, platform=platform) as source:
        return source.size()
