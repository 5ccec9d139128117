"""Registry names, credentials and authentication for `swebox.oci.registry.RegistryClient`.

Which host serves a registry's API (`docker.io` → `registry-1.docker.io`) and under which
repository name; credentials from `docker login` (config.json `auths`); and answering a 401's
`WWW-Authenticate` challenge: a `Bearer` token fetched from the challenge's realm and cached
per scope, or `Basic` credentials sent with every request.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from swebox.errors import SweboxError
from swebox.images.reference import DOCKER_HUB, ImageRef

_HUB_NAMES = (DOCKER_HUB, "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
_HUB_API = "registry-1.docker.io"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
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


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3) or "")
              .replace('\\"', '"') for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


class _RegistryAuth:
    """Token and Basic auth, mixed into `RegistryClient` (which sets these attributes in its
    `__init__` and sends requests through `_send_with_retries`)."""

    registry: str
    _auth: tuple[str, str] | None
    _tokens: dict[str, tuple[str, float]]  # scope -> (token, expiry)
    _basic: bool  # the registry asked for Basic auth
    _http: httpx.Client
    token_requests: int

    def _send_with_retries(self, build: Callable[[], httpx.Request], *, what: str,
                           auth: httpx.Auth | None = None) -> httpx.Response:
        raise NotImplementedError

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
