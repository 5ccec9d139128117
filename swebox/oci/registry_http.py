"""The HTTP side of `swebox.oci.registry.RegistryClient`: requests authenticated as the
registry asks (see `swebox.oci.registry_auth`), retried with exponential back-off on 429, 5xx
and connection errors, redirects followed (to the registry's storage); non-2xx answers mapped
to swebox errors; streamed bodies read in chunks without holding them in memory.
"""

from __future__ import annotations

import email.utils
import functools
import io
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from swebox.errors import ImageNotFound, SweboxError
from swebox.oci.registry_auth import _RegistryAuth

_MAX_REDIRECTS = 10
_CHUNK = 1 << 16
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


# --- small helpers ----------------------------------------------------------------------------


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


# --- the transport ----------------------------------------------------------------------------


class _RegistryHTTP(_RegistryAuth):
    """Sending requests, mixed into `RegistryClient` (which sets these attributes in its
    `__init__`)."""

    base_url: str
    insecure: bool
    attempts: int
    backoff: float
    max_backoff: float
    max_retry_after: float

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

    # ---- errors

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
