"""The build half of OpenHands' runtime API, answered without building anything.

OpenHands (with `sandbox.runtime_container_image` unset) asks the runtime API to build its
runtime image on top of `base_container_image`. swebox runs the base image as it is and serves
the action API itself, so a "build" only records which base image each tag stands for:
`POST /build` reads the `FROM` line of the Dockerfile in the context, records the target image
and tags -> that base, and `/build_status` says SUCCESS at once; a later `/start` of a recorded
tag starts the base image. `/image_exists` answers from the engine (an image exists when it is
there to start) and for recorded tags. Records are per API key and live as long as the server.
"""

from __future__ import annotations

import base64
import binascii
import io
import secrets
import tarfile
import threading
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from swebox.server.openhands.runtimes import setting
from swebox.server.state import Server

MAX_CONTEXT = 1024**3  # bytes of a base64 build context read
MAX_DOCKERFILE = 1024**2


def control_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


class Builds:
    """Tags recorded by /build, per key: (owner, tag) -> base image; (owner, id) -> target."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tags: dict[tuple[str, str], str] = {}
        self.builds: dict[tuple[str, str], str] = {}

    def base_of(self, owner: str, image: str) -> str:
        """The image a (possibly recorded) tag stands for."""
        with self.lock:
            for _ in range(8):  # FROM a recorded tag: follow it
                base = self.tags.get((owner, image))
                if base is None or base == image:
                    return image
                image = base
        return image

    def record(self, owner: str, tags: list[str], base: str) -> str:
        build_id = secrets.token_hex(12)
        with self.lock:
            for tag in tags:
                self.tags[(owner, tag)] = base
            self.builds[(owner, build_id)] = tags[0]
        return build_id

    def known(self, owner: str, image: str) -> bool:
        with self.lock:
            return (owner, image) in self.tags

    def target(self, owner: str, build_id: str) -> str | None:
        with self.lock:
            return self.builds.get((owner, build_id))


def from_line(dockerfile: str) -> str | None:
    """The image of the first FROM (options such as --platform skipped)."""
    for raw in dockerfile.splitlines():
        words = raw.strip().split()
        if not words or words[0].upper() != "FROM":
            continue
        names = [w for w in words[1:] if not w.startswith("--")]
        return names[0] if names else None
    return None


def base_from_context(encoded: bytes) -> str:
    """The FROM image of the Dockerfile at the top of a base64 tar.gz build context."""
    try:
        data = base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError) as e:
        raise HTTPException(400, f"the build context is not base64: {e}") from e
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                parts = [p for p in PurePosixPath(member.name).parts if p != "."]
                if parts == ["Dockerfile"] and member.isfile():
                    f = tar.extractfile(member)
                    text = f.read(MAX_DOCKERFILE).decode("utf-8", "replace") if f else ""
                    break
            else:
                raise HTTPException(400, "the build context has no Dockerfile at its top")
    except tarfile.TarError as e:
        raise HTTPException(400, f"the build context is not a tar archive: {e}") from e
    base = from_line(text)
    if not base or "$" in base:
        raise HTTPException(400, f"cannot tell the base image from the Dockerfile's FROM line "
                                 f"({base or 'none'}): swebox runs base images as they are")
    return base


def local_image(backend: str, name: str) -> dict[str, Any] | None:
    """{upload_time, image_size_bytes} of an image this server can start without a pull."""
    if backend == "bwrap" and Path(name).is_dir():
        mtime = datetime.fromtimestamp(Path(name).stat().st_mtime, timezone.utc)
        return {"upload_time": mtime.isoformat(), "image_size_bytes": 0}
    from swebox.sandbox.engine import find_image

    try:
        found = find_image("docker" if backend == "bwrap" else backend, name)  # type: ignore[arg-type]
    except Exception:
        return None
    if found is None:
        return None
    info = found[1]
    return {"upload_time": str(info.get("Created") or ""),
            "image_size_bytes": int(info.get("Size") or 0)}


def build_routes(server: Server, builds: Builds) -> APIRouter:
    r = APIRouter()
    owner = Depends(server.owner)

    @r.get("/registry_prefix")
    def registry_prefix(who: str = owner) -> dict[str, str]:
        return {"registry_prefix": setting(server, "registry_prefix", "swebox") or "swebox"}

    @r.get("/image_exists")
    def image_exists(image: str, request: Request, who: str = owner) -> dict[str, Any]:
        base = builds.base_of(who, image)
        info = local_image(server.backend, base)
        if info is None and builds.known(who, image):  # a recorded tag: /start pulls its base
            info = {"upload_time": "", "image_size_bytes": 0}
        return {"exists": info is not None, "image": info, "url": control_url(request)}

    @r.post("/build")
    async def build(request: Request, who: str = owner) -> dict[str, str]:
        try:
            form = await request.form()
        except AssertionError as e:  # starlette without python-multipart
            raise HTTPException(500, f"this swebox server cannot read builds: {e}") from e
        try:
            context = form.get("context")
            target = form.get("target_image")
            tags = [t for t in form.getlist("tags") if isinstance(t, str) and t]
            if context is None or not isinstance(target, str) or not target:
                raise HTTPException(400, "a build needs the multipart fields `context` and "
                                         "`target_image`")
            if isinstance(context, UploadFile):
                encoded = await context.read(MAX_CONTEXT + 1)
            else:
                encoded = context.encode()
            if len(encoded) > MAX_CONTEXT:
                raise HTTPException(413, "the build context is over 1 GiB")
        finally:
            await form.close()
        base = builds.base_of(who, await run_in_threadpool(base_from_context, encoded))
        build_id = builds.record(who, [target, *tags], base)
        return {"build_id": build_id, "url": control_url(request)}

    @r.get("/build_status")
    def build_status(build_id: str, who: str = owner) -> dict[str, str]:
        target = builds.target(who, build_id)
        if target is None:
            raise HTTPException(404, f"no build {build_id}")
        return {"status": "SUCCESS", "image": target}

    return r
