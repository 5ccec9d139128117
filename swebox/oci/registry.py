"""Images straight from a registry over the OCI distribution API, without a container engine.

`RegistryClient` speaks to one registry: plain HTTP for loopback hosts (or when asked), HTTPS
otherwise; anonymous, `Basic` or `Bearer` token auth (tokens fetched from the challenge's realm
and cached per scope); retries with exponential back-off on 429, 5xx and connection errors.
`RegistrySource` is an `ImageSource` for one reference: it resolves manifest lists and OCI
indexes to a platform, checks every manifest and blob against its digest, and streams layer
blobs (following the registry's redirects to its storage) without holding them in memory.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import functools
import hashlib
import io
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

import httpx

from swebox.errors import CorruptData, ImageNotFound, SweboxError
from swebox.images.reference import DOCKER_HUB, ImageRef
from swebox.oci.image import Descriptor
from swebox.oci.layers import VerifyingReader, check_digest

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
_HUB_NAMES = (DOCKER_HUB, "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
_HUB_API = "registry-1.docker.io"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_MAX_MANIFEST = 8 << 20  # bytes; a manifest larger than this is not a manifest
_MAX_CONFIG = 64 << 20
_MAX_REDIRECTS = 10
_MAX_INDEX_DEPTH = 4
_CHUNK = 1 << 16
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


# --- references and credentials ---------------------------------------------------------------


def api_host(registry: str) -> str:
    """The host[:port] that serves the registry API (`docker.io` → `registry-1.docker.io`)."""
    return _HUB_API if registry in _HUB_NAMES else registry


def repo_path(ref: ImageRef) -> str:
    """The repository name the API uses: Docker Hub's one-component names are under library/."""
    if ref.domain in _HUB_NAMES and "/" not in ref.path:
        return f"library/{ref.path}"
    return ref.path


def _host_only(hostport: str) -> str:
    if hostport.startswith("["):
        return hostport[1:].split("]", 1)[0]
    if hostport.count(":") > 1:  # a bare IPv6 address
        return hostport
    return hostport.rsplit(":", 1)[0] if ":" in hostport else hostport


def is_loopback(registry: str) -> bool:
    return _host_only(registry).lower() in _LOOPBACK


def docker_config_path() -> Path:
    """`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`."""
    base = os.environ.get("DOCKER_CONFIG")
    return (Path(base) if base else Path.home() / ".docker") / "config.json"


def docker_config_auth(registry: str) -> tuple[str, str] | None:
    """Credentials stored by `docker login` (the `auths` section of config.json), if any.

    Credential helpers (`credsStore`, `credHelpers`) are not consulted."""
    path = docker_config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise SweboxError(f"cannot read docker credentials from {path}: {e}",
                          hint="fix the file or pass auth= explicitly") from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    names = [registry]
    if registry in _HUB_NAMES:
        names = ["https://index.docker.io/v1/", *_HUB_NAMES]
    for key, entry in auths.items():
        bare = key.removeprefix("https://").removeprefix("http://").rstrip("/")
        if not isinstance(entry, dict) or (key not in names and bare not in names
                                           and bare.removesuffix("/v1") not in names):
            continue
        if entry.get("username") and entry.get("password"):
            return str(entry["username"]), str(entry["password"])
        encoded = entry.get("auth")
        if not encoded:
            continue
        try:
            user, sep, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise SweboxError(f"bad auths[{key!r}].auth in {path}: not base64 user:password",
                              hint=f"run `docker login {registry}` again")
        return user, password
    return None


# --- small helpers ----------------------------------------------------------------------------


def _check_digest(body: bytes, digest: str, what: str) -> None:
    alg, want = check_digest(digest, what)
    got = hashlib.new(alg, body).hexdigest()
    if got != want:
        raise CorruptData(f"{what}: digest mismatch, expected {digest}, got {alg}:{got}",
                          hint="the registry or the network damaged it; fetch it again, or "
                               "re-push the image")


class _ResponseStream(io.RawIOBase):
    """The raw (as stored, not content-decoded) body of a streamed response, read in chunks."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        super().__init__()
        self._response = response
        self._chunks: Iterator[bytes] = response.iter_raw(_CHUNK)
        self._pending = b""
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
            except httpx.HTTPError as e:
                raise SweboxError(f"reading {self._what} failed: {e}",
                                  hint="the connection broke; retry") from None
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


def _registry_errors(response: httpx.Response) -> str:
    """The `errors` a registry put in its JSON body, as `CODE: message; ...` (or '')."""
    try:
        errors = json.loads(response.content).get("errors") or []
        return "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}".rstrip(": ")
                         for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError, httpx.HTTPError):
        return ""


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3) or "")
              .replace('\\"', '"') for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


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


class RegistryClient:
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

    # ---- auth

    def _cached_token(self, scope: str) -> str | None:
        entry = self._tokens.get(scope)
        if entry and entry[1] > time.monotonic():
            return entry[0]
        self._tokens.pop(scope, None)
        return None

    def _auth_header(self, scope: str) -> str | None:
        token = self._cached_token(scope)
        if token:
            return f"Bearer {token}"
        if self._basic and self._auth:
            raw = f"{self._auth[0]}:{self._auth[1]}".encode()
            return f"Basic {base64.b64encode(raw).decode()}"
        return None

    def _fetch_token(self, params: dict[str, str], scope: str) -> None:
        realm = params.get("realm")
        if not realm:
            raise SweboxError(f"registry {self.registry} sent a Bearer challenge without a realm",
                              hint="the registry is misconfigured; report it to its operator")
        query: list[tuple[str, Any]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        wanted = params.get("scope") or scope
        query.extend(("scope", s) for s in wanted.split() if s)
        if self._auth:
            query.append(("account", self._auth[0]))
        basic = httpx.BasicAuth(*self._auth) if self._auth else None
        response = self._send_with_retries(
            functools.partial(self._http.build_request, "GET", realm, params=query),
            what=f"a token for {self.registry} from {realm}", auth=basic)
        with contextlib.closing(response):
            response.read()
            if response.status_code in (401, 403):
                if self._auth:
                    raise SweboxError(
                        f"the token server {realm} of {self.registry} refused the credentials "
                        f"of user {self._auth[0]!r} (HTTP {response.status_code})",
                        hint=f"check the password, or run `docker login {self.registry}` again")
                raise SweboxError(
                    f"the token server {realm} of {self.registry} refused anonymous access "
                    f"(HTTP {response.status_code})",
                    hint=f"run `docker login {self.registry}` or pass credentials")
            if response.status_code != 200:
                raise SweboxError(f"the token server {realm} of {self.registry} answered "
                                  f"HTTP {response.status_code}",
                                  hint="retry later; if it persists the registry is at fault")
            try:
                body = response.json()
                token = body.get("token") or body.get("access_token")
                lifetime = float(body.get("expires_in") or 60)
            except (ValueError, AttributeError, TypeError):
                token = None
            if not token or not isinstance(token, str):
                raise SweboxError(f"the token server {realm} of {self.registry} sent no token",
                                  hint="the registry is misconfigured; report it")
        self.token_requests += 1
        # Renew a little early so a token does not expire between check and use.
        expiry = time.monotonic() + max(lifetime - 10, lifetime / 2)
        self._tokens[scope] = (token, expiry)
        if wanted != scope:
            self._tokens[wanted] = (token, expiry)

    def _handle_challenge(self, response: httpx.Response, scope: str) -> None:
        """Get what a 401 asks for (a token or Basic credentials), or explain why not."""
        challenges = [_parse_challenge(h) for h in response.headers.get_list("www-authenticate")]
        for scheme, params in challenges:
            if scheme == "bearer":
                self._fetch_token(params, scope)
                return
        for scheme, _params in challenges:
            if scheme == "basic":
                if not self._auth:
                    raise SweboxError(f"registry {self.registry} needs credentials",
                                      hint=f"run `docker login {self.registry}` or pass auth=")
                self._basic = True
                return
        raise SweboxError(f"registry {self.registry} answered 401 without a usable "
                          "WWW-Authenticate challenge",
                          hint="only Bearer and Basic authentication are supported")

    # ---- transport

    def _sleep_before_retry(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(self.max_backoff, self.backoff * (2 ** attempt))
        delay *= 0.5 + random.random() / 2
        if response is not None:
            after = _retry_after(response)
            if after is not None:
                delay = min(after, self.max_retry_after)
        time.sleep(delay)

    def _send_with_retries(self, build: Callable[[], httpx.Request], *, what: str,
                           auth: httpx.Auth | None = None) -> httpx.Response:
        """Send (streamed) with retries on connection errors, 429 and 5xx; return the last
        response, whatever its status, or raise after the last connection error."""
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1
            try:
                response = self._http.send(
                    build(), stream=True,
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT)
            except httpx.TransportError as e:
                if last:
                    raise self._unreachable(e, what) from None
                self._sleep_before_retry(attempt, None)
                continue
            if response.status_code in _RETRY_STATUSES and not last:
                response.close()
                self._sleep_before_retry(attempt, response)
                continue
            return response
        raise AssertionError("unreachable")

    def _unreachable(self, e: Exception, what: str) -> SweboxError:
        hint = "check the network and the registry address"
        if not self.insecure and isinstance(e, httpx.ConnectError) and "SSL" in str(e):
            hint = "if the registry speaks plain HTTP, pass insecure=True"
        return SweboxError(f"cannot reach {self.registry} for {what} after "
                           f"{self.attempts} attempts: {str(e) or type(e).__name__}", hint=hint)

    def request(self, method: str, path: str, *, scope: str, what: str,
                headers: Mapping[str, str] | None = None) -> httpx.Response:
        """A streamed response to `method base_url+path`: authenticated as the registry asks,
        retried on 429/5xx/connection errors, redirects followed (without the Authorization
        header once they leave the registry's origin). The caller closes the response; a
        non-2xx final status is returned, not raised (see `raise_for`)."""
        url = httpx.URL(self.base_url + path)
        authenticated = False
        for _ in range(2):  # once, and again after answering an auth challenge
            origin = url
            target = url
            redirects = 0
            while True:
                hdrs = dict(headers or {})
                auth = self._auth_header(scope)
                if auth and _same_origin(target, origin):
                    hdrs["Authorization"] = auth
                response = self._send_with_retries(
                    functools.partial(self._http.build_request, method, target, headers=hdrs),
                    what=what)
                if response.status_code not in _REDIRECTS:
                    break
                location = response.headers.get("location")
                response.close()
                redirects += 1
                if not location or redirects > _MAX_REDIRECTS:
                    raise SweboxError(f"{self.registry} redirected {what} too often or nowhere",
                                      hint="the registry is misconfigured; report it")
                target = target.join(location)
            if response.status_code == 401 and _same_origin(target, origin):
                if authenticated:
                    return response
                response.read()
                response.close()
                self._handle_challenge(response, scope)
                authenticated = True
                continue
            return response
        raise AssertionError("unreachable")

    # ---- the API

    def _scope(self, repo: str) -> str:
        return f"repository:{repo}:pull"

    def raise_for(self, response: httpx.Response, what: str, *, missing: str) -> None:
        """Raise the right error for a non-2xx response (reads and closes it)."""
        if response.is_success:
            return
        response.read()
        response.close()
        detail = _registry_errors(response)
        status = response.status_code
        suffix = f" ({detail})" if detail else ""
        if status == 404:
            raise ImageNotFound(f"{missing}{suffix}",
                                hint="check the name and tag, or push the image first")
        if status in (401, 403):
            if self._auth:
                raise SweboxError(f"{self.registry} refused access to {what} for user "
                                  f"{self._auth[0]!r} (HTTP {status}){suffix}",
                                  hint="check the credentials have pull access")
            raise ImageNotFound(f"{missing}, or it needs credentials (HTTP {status}){suffix}",
                                hint=f"check the name, or run `docker login {self.registry}`")
        if status == 429 or status >= 500:
            raise SweboxError(f"{self.registry} kept failing for {what}: HTTP {status} after "
                              f"{self.attempts} attempts{suffix}", hint="retry later")
        raise SweboxError(f"{self.registry} answered HTTP {status} for {what}{suffix}",
                          hint="the request or the registry is at fault; report it")

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
