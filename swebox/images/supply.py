"""Getting task images onto this machine's engine (seed 000, steps 2-4, done right).

For each image reference:
- already present under its short local name: nothing to do;
- a rewrite rule maps it to a `docker save` tarball in an object store: the object is streamed
  straight into the engine's image load (no temporary file, flat memory), the loaded image's
  tags are checked against the reference, the short local name is tagged, and the long name
  can be dropped;
- otherwise it is pulled from its registry (its mirrors first), with a few pulls per registry at
  a time and back-off on 429 and 5xx.
With a disk budget, room is made before each load (see `budget`), and every image swebox puts
into an engine is entered in the `ledger`, so that only those are ever pruned.
`push` is the way back: the engine's `save` stream goes straight into an object store.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from docker.errors import APIError
from pydantic import BaseModel

from swebox.errors import ImageNotFound, SandboxError, SweboxError
from swebox.images import budget, ledger, stores
from swebox.images.reference import ImageRef
from swebox.sandbox.engine import connect, engine_url, find_image
from swebox.sandbox.models import BackendName
from swebox.tasks.resolver import ImageRules

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
Action = Literal["present", "loaded", "pulled"]


class FetchResult(BaseModel):
    reference: str
    local: str
    action: Action
    source: str | None = None  # the object URI or registry the image came from
    bytes: int = 0
    seconds: float = 0.0


def _names(ref: str) -> set[str]:
    """The forms an engine may report for one reference (Docker and Podman differ)."""
    parsed = ImageRef.parse(ref)
    tag = parsed.tag or "latest"
    out = {ref, f"{parsed}:{tag}" if not parsed.tag else str(parsed), parsed.normalized()}
    if parsed.registry is None:
        out.add(f"localhost/{parsed.path}:{tag}")
    return out


def _one_line(text: object, limit: int = 300) -> str:
    """Engines' messages can span lines (Podman lists every format it tried): one line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _counting(chunks: Iterable[bytes], counter: list[int],
              on_bytes: Callable[[int], None] | None = None) -> Iterator[bytes]:
    for chunk in chunks:
        counter[0] += len(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
        yield chunk


def load_from_store(uri: str, expected: str, *, backend: BackendName = "docker",
                    endpoint: str | None = None,
                    on_bytes: Callable[[int], None] | None = None) -> tuple[list[str], int]:
    """Stream the tarball at `uri` into the engine; returns (loaded names, bytes read).

    The tarball must hold `expected`: if it holds something else, what it loaded is removed
    again and SandboxError says so. A truncated or corrupt stream fails in the engine, which
    keeps nothing of it."""
    api = connect(backend).api
    counter = [0]
    loaded: list[str] = []
    with stores.open_read(uri, endpoint=endpoint) as f:
        chunks = _counting(iter(lambda: f.read(CHUNK), b""), counter, on_bytes)
        try:
            for message in api.load_image(chunks):
                if "error" in message:
                    raise SandboxError(f"{backend} could not load {uri}: "
                                       f"{_one_line(message['error'])}",
                                       hint="the tarball may be truncated or not a `docker "
                                       "save` archive")
                text = str(message.get("stream", ""))
                for line in text.splitlines():
                    if line.startswith("Loaded image: "):
                        loaded.append(line[len("Loaded image: "):].strip())
                    elif line.startswith("Loaded image ID: "):
                        loaded.append(line[len("Loaded image ID: "):].strip())
        except APIError as e:
            raise SandboxError(f"{backend} could not load {uri}: "
                               f"{_one_line(e.explanation or e)}",
                               hint="the tarball may be truncated or not a `docker save` "
                               "archive") from e
    if not _names(expected) & set(loaded):
        for name in loaded:
            try:
                api.remove_image(name)
            except APIError:
                pass
        raise SandboxError(f"{uri} holds {', '.join(loaded) or 'no tagged image'}, not "
                           f"{expected}", hint="fix the rewrite rule's store template or the "
                           "object; what it loaded was removed again")
    return loaded, counter[0]


def tag(backend: BackendName, source: str, target: str) -> None:
    api = connect(backend).api
    ref = ImageRef.parse(target)
    repo = f"{ref.registry}/{ref.path}" if ref.registry else ref.path
    if backend == "podman" and not ref.registry:
        repo = f"localhost/{ref.path}"  # where Podman looks for local short names
    api.tag(source, repo, ref.tag or "latest")


# Registries throttle (Docker Hub answers 429 at a few parallel pulls), so pulls from one
# registry share a small number of slots, whatever the fetch concurrency.
PULL_SLOTS = 3
_TRANSIENT = re.compile(r"toomanyrequests|too many requests|\b(429|50[0234])\b|service unavailable"
                        r"|bad gateway|gateway timeout", re.IGNORECASE)
_slots: dict[str, threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def _slot(domain: str) -> threading.BoundedSemaphore:
    with _slots_lock:
        if domain not in _slots:
            _slots[domain] = threading.BoundedSemaphore(PULL_SLOTS)
        return _slots[domain]


def mirror_names(reference: str, mirrors: dict[str, list[str]]) -> list[str]:
    """The same image on each mirror of its registry, in the order given."""
    ref = ImageRef.parse(reference)
    path = ref.path
    if ref.registry is None and "/" not in path:
        path = f"library/{path}"  # Docker Hub's implicit namespace, explicit on a mirror
    suffix = f":{ref.tag}" if ref.tag else ""
    suffix += f"@{ref.digest}" if ref.digest else ""
    if not suffix:
        suffix = ":latest"
    keys = {ref.domain, ref.registry or "", "docker.io" if ref.registry is None else ""} - {""}
    out: list[str] = []
    for key in keys:
        for mirror in mirrors.get(key, []):
            name = f"{mirror.rstrip('/')}/{path}{suffix}"
            if name not in out:
                out.append(name)
    return out


def _pull_once(backend: BackendName, reference: str, retries: int) -> None:
    api = connect(backend).api
    delay = 1.0
    for attempt in range(retries + 1):
        try:
            for message in api.pull(reference, stream=True, decode=True):
                if "error" in message:
                    raise APIError(str(message["error"]))
            return
        except APIError as e:
            status = getattr(getattr(e, "response", None), "status_code", None)
            text = str(getattr(e, "explanation", None) or e)
            # The daemon reports a registry's 429/5xx either as its own HTTP status or, once
            # the pull has started streaming, only in the message text.
            transient = status in (429, 500, 502, 503, 504) or bool(_TRANSIENT.search(text))
            if transient and attempt < retries:
                time.sleep(delay)
                delay *= 2
                continue
            raise ImageNotFound(f"cannot pull {reference}: {_one_line(text, 200)}") from e


def pull(backend: BackendName, reference: str, retries: int = 4,
         mirrors: dict[str, list[str]] | None = None) -> str:
    """Pull `reference`, trying its registry's mirrors first; back-off on 429 and 5xx.

    An image found on a mirror is tagged with `reference` and the mirror's name dropped, so
    the engine holds it under the name the task asks for. Returns where it came from."""
    failures: list[str] = []
    for source in [*mirror_names(reference, mirrors or {}), reference]:
        try:
            with _slot(ImageRef.parse(source).domain):
                _pull_once(backend, source, retries)
        except ImageNotFound as e:
            failures.append(e.message)
            continue
        if source != reference:
            tag(backend, source, reference)
            try:
                connect(backend).api.remove_image(source)
            except APIError:
                pass
        return source
    raise ImageNotFound("; ".join(failures), hint="add a rewrite rule mapping it to an "
                        "object-store tarball, a mirror, or make its registry reachable")


def _record(backend: BackendName, reference: str, how: str) -> None:
    """Enter what was just loaded into the ledger, so the disk budget may remove it later."""
    found = find_image(backend, reference)
    if found is not None:
        info = found[1]
        ledger.record(engine_url(backend), info["Id"], info.get("RepoTags") or [],
                      int(info.get("Size") or 0), how)


def estimate_need(uri: str | None, reference: str, *, endpoint: str | None = None,
                  size: int | None = None) -> int:
    """Bytes of disk a load or pull will take at its peak (an estimate, on the safe side).

    A `docker save` tarball is unpacked beside itself by the engine's load (Docker extracts it
    to a temporary directory, Podman buffers it in /var/tmp), so a load peaks near twice the
    tarball; a compressed tarball unpacks to about three times its size. A pull's layers are
    compressed: their sum from the registry's manifest, times three."""
    if uri:
        if size is None:  # the caller may know it already (fetch stats tarballs for its bar)
            size = stores.stat(uri, endpoint=endpoint).size or 0
        compressed = uri.endswith((".gz", ".tgz", ".zst", ".xz"))
        return size * (4 if compressed else 2)
    try:
        from swebox.oci.registry import image_size

        return image_size(reference) * 3
    except Exception as e:  # unreachable registry, private image: the engine may still pull
        log.info("no size for %s from its registry (%s); budget counts keep-free only",
                 reference, _one_line(e, 120))
        return 0


def fetch_image(reference: str, rules: ImageRules, *, backend: BackendName = "docker",
                drop_long_name: bool = False, endpoint: str | None = None,
                keep_free: int | None = None, tarball_size: int | None = None,
                on_bytes: Callable[[int], None] | None = None) -> FetchResult:
    """Make `reference` present under its local name; see the module docstring.

    With `keep_free` set, room is made first (see `budget.room`): too little disk raises
    DiskFull before anything is loaded."""
    start = time.monotonic()
    local = rules.local_name(reference)
    api = connect(backend).api
    if find_image(backend, local) is not None:
        return FetchResult(reference=reference, local=local, action="present")
    uri = rules.store_path(reference)
    room = contextlib.nullcontext() if keep_free is None else budget.room(
        backend, estimate_need(uri, reference, endpoint=endpoint, size=tarball_size),
        keep_free, what=reference,
        protect={reference, local})
    with room:
        if uri:
            _, size = load_from_store(uri, reference, backend=backend, endpoint=endpoint,
                                      on_bytes=on_bytes)
            action: Action = "loaded"
        else:
            uri, size, action = pull(backend, reference, mirrors=rules.mirrors), 0, "pulled"
    if local != reference:
        tag(backend, reference, local)
        if drop_long_name:
            try:
                api.remove_image(reference)  # only untags: the short name keeps the image
            except APIError:
                pass
    _record(backend, local, action)
    return FetchResult(reference=reference, local=local, action=action, source=uri, bytes=size,
                       seconds=round(time.monotonic() - start, 3))


def push(reference: str, uri: str, *, backend: BackendName = "docker",
         endpoint: str | None = None) -> int:
    """Stream the engine's `save` of `reference` into the object at `uri`; returns bytes."""
    api = connect(backend).api
    if find_image(backend, reference) is None:
        raise ImageNotFound(f"image {reference} is not present in {backend}",
                            hint="fetch or build it first")
    try:
        stream = api.get_image(reference)
        return stores.upload(uri, stream, endpoint=endpoint)
    except APIError as e:
        raise SweboxError(f"{backend} could not save {reference}: {e.explanation or e}") from e
