"""Getting task images onto this machine's engine (seed 000, steps 2-4, done right).

For each image reference:
- already present under its short local name: nothing to do;
- a rewrite rule maps it to a `docker save` tarball in an object store: the object is streamed
  straight into the engine's image load (no temporary file, flat memory), the loaded image's
  tags are checked against the reference, the short local name is tagged, and the long name
  can be dropped;
- otherwise it is pulled from its registry, retrying with back-off on 429 and 5xx.
`push` is the way back: the engine's `save` stream goes straight into an object store.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from docker.errors import APIError, NotFound
from docker.errors import ImageNotFound as DockerImageNotFound
from pydantic import BaseModel

from swebox.errors import ImageNotFound, SandboxError, SweboxError
from swebox.images import stores
from swebox.images.reference import ImageRef
from swebox.sandbox.engine import connect, local_names
from swebox.sandbox.models import BackendName
from swebox.tasks.resolver import ImageRules

CHUNK = 1024 * 1024
Action = Literal["present", "loaded", "pulled"]


class FetchResult(BaseModel):
    reference: str
    local: str
    action: Action
    source: str | None = None  # the object URI or registry the image came from
    bytes: int = 0
    seconds: float = 0.0


def _present(api: Any, name: str, backend: BackendName) -> bool:
    for candidate in local_names(backend, name):
        try:
            api.inspect_image(candidate)
            return True
        except (DockerImageNotFound, NotFound):
            continue
    return False


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


def _counting(chunks: Iterable[bytes], counter: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        counter[0] += len(chunk)
        yield chunk


def load_from_store(uri: str, expected: str, *, backend: BackendName = "docker",
                    endpoint: str | None = None) -> tuple[list[str], int]:
    """Stream the tarball at `uri` into the engine; returns (loaded names, bytes read).

    The tarball must hold `expected`: if it holds something else, what it loaded is removed
    again and SandboxError says so. A truncated or corrupt stream fails in the engine, which
    keeps nothing of it."""
    api = connect(backend).api
    counter = [0]
    loaded: list[str] = []
    with stores.open_read(uri, endpoint=endpoint) as f:
        chunks = _counting(iter(lambda: f.read(CHUNK), b""), counter)
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


def pull(backend: BackendName, reference: str, retries: int = 4) -> str:
    """Pull with back-off on 429 and 5xx; ImageNotFound with what to do otherwise."""
    api = connect(backend).api
    delay = 1.0
    for attempt in range(retries + 1):
        try:
            for message in api.pull(reference, stream=True, decode=True):
                if "error" in message:
                    raise APIError(str(message["error"]))
            return reference
        except APIError as e:
            status = getattr(getattr(e, "response", None), "status_code", None)
            text = str(getattr(e, "explanation", None) or e)
            transient = status in (429, 500, 502, 503, 504) or "toomanyrequests" in text
            if transient and attempt < retries:
                time.sleep(delay)
                delay *= 2
                continue
            raise ImageNotFound(f"cannot pull {reference}: {text.splitlines()[0][:200]}",
                                hint="add a rewrite rule mapping it to an object-store "
                                "tarball, or make its registry reachable") from e
    raise AssertionError("unreachable")


def fetch_image(reference: str, rules: ImageRules, *, backend: BackendName = "docker",
                drop_long_name: bool = False, endpoint: str | None = None) -> FetchResult:
    start = time.monotonic()
    local = rules.local_name(reference)
    api = connect(backend).api
    if _present(api, local, backend):
        return FetchResult(reference=reference, local=local, action="present")
    uri = rules.store_path(reference)
    if uri:
        _, size = load_from_store(uri, reference, backend=backend, endpoint=endpoint)
        action: Action = "loaded"
    else:
        pull(backend, reference)
        uri, size, action = ImageRef.parse(reference).domain, 0, "pulled"
    if local != reference:
        tag(backend, reference, local)
        if drop_long_name:
            try:
                api.remove_image(reference)  # only untags: the short name keeps the image
            except APIError:
                pass
    return FetchResult(reference=reference, local=local, action=action, source=uri, bytes=size,
                       seconds=round(time.monotonic() - start, 3))


def push(reference: str, uri: str, *, backend: BackendName = "docker",
         endpoint: str | None = None) -> int:
    """Stream the engine's `save` of `reference` into the object at `uri`; returns bytes."""
    api = connect(backend).api
    if not _present(api, reference, backend):
        raise ImageNotFound(f"image {reference} is not present in {backend}",
                            hint="fetch or build it first")
    try:
        stream = api.get_image(reference)
        return stores.upload(uri, stream, endpoint=endpoint)
    except APIError as e:
        raise SweboxError(f"{backend} could not save {reference}: {e.explanation or e}") from e
