"""`swebox doctor --server URL`: can this machine use that runtime server?

Four rows, each one request under a deadline: reachable (`/healthz`), version skew against
this swebox, auth (the key from $SWEBOX_API_KEY, or the server runs without auth), and capacity
(`/readyz`: the engine behind it, sandboxes live out of how many). Reachability and auth gate
the exit code; a server that is full or skewed is a warning, because it still works.
"""

from __future__ import annotations

import os
import time

import httpx

from swebox import __version__
from swebox.doctor import Check, _first_line, _guarded

DEADLINE = 5.0


def _reach(http: httpx.Client) -> tuple[Check, str | None]:
    t0 = time.perf_counter()
    try:
        r = http.get("/healthz")
        r.raise_for_status()
        version = str(r.json().get("version") or "")
    except (httpx.HTTPError, ValueError) as e:
        return Check(name="server: reachable", status="FAIL", gates_exit=True,
                     detail=f"{http.base_url}: {_first_line(e)} -- is `swebox serve` running "
                            "there, and is the address reachable from here?"), None
    ms = (time.perf_counter() - t0) * 1000
    return Check(name="server: reachable", status="ok", gates_exit=True,
                 detail=f"{http.base_url} answered in {ms:.1f} ms"), version


def _skew(version: str) -> Check:
    mine, theirs = __version__.split("."), version.split(".")
    if version == __version__:
        return Check(name="server: version", status="ok", detail=f"swebox {version} on both")
    status = "FAIL" if mine[:1] != theirs[:1] else "warn"
    return Check(name="server: version", status=status,  # type: ignore[arg-type]
                 detail=f"server runs swebox {version or '?'}, this machine {__version__}: "
                        "install the same version on both")


def _auth(http: httpx.Client, key: str | None) -> Check:
    anonymous = http.get("/v1/sandboxes")
    if anonymous.status_code == 200:
        return Check(name="server: auth", status="warn", gates_exit=True,
                     detail="the server runs without auth (--disable-auth): anyone who reaches "
                            "it can run commands")
    if not key:
        return Check(name="server: auth", status="FAIL", gates_exit=True,
                     detail="the server wants an API key and SWEBOX_API_KEY is not set -- "
                            "create one on the server with `swebox serve keys add NAME`")
    r = http.get("/v1/sandboxes", headers={"Authorization": f"Bearer {key}"})
    if r.status_code == 401:
        return Check(name="server: auth", status="FAIL", gates_exit=True,
                     detail="the server refused SWEBOX_API_KEY -- check it, or create a new "
                            "key with `swebox serve keys add NAME`")
    r.raise_for_status()
    return Check(name="server: auth", status="ok", gates_exit=True,
                 detail=f"key accepted; it holds {len(r.json())} sandbox(es)")


def _capacity(http: httpx.Client) -> Check:
    r = http.get("/readyz")
    if r.status_code == 503:
        return Check(name="server: capacity", status="FAIL",
                     detail=f"not ready: {r.json().get('detail', r.text)[:300]}")
    r.raise_for_status()
    data = r.json()
    live, cap = int(data.get("live", 0)), int(data.get("capacity", 0))
    status = "warn" if cap and live >= 0.9 * cap else "ok"
    return Check(name="server: capacity", status=status,  # type: ignore[arg-type]
                 detail=f"{data.get('backend')} backend, {live} of {cap} sandboxes in use"
                        + (" -- nearly full: starts will wait (429)" if status == "warn"
                           else ""))


def server_checks(url: str, api_key: str | None = None) -> list[Check]:
    key = api_key or os.environ.get("SWEBOX_API_KEY")
    with httpx.Client(base_url=url.rstrip("/"), timeout=DEADLINE) as http:
        reach, version = _reach(http)
        if version is None:
            return [reach]
        return [reach,
                _guarded("server: version", lambda: _skew(version)),
                _guarded("server: auth", lambda: _auth(http, key), gates_exit=True),
                _guarded("server: capacity", lambda: _capacity(http))]
