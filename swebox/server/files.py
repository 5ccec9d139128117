"""File transfer routes, streamed both ways so memory stays flat.

`PUT .../file` and `GET .../file` move one file's bytes as the body. `PUT .../archive` takes a
tar (its top entry becomes `path`) and `GET .../archive` answers one. Bodies are spooled to a
temporary directory on the server's disk as they arrive, extracted there with the same safe
extraction downloads use (no absolute paths, `..`, outward links or devices), and handed to
the sandbox's own upload, so every backend gets the same checks; past `max_upload` bytes the
answer is 413 and nothing reaches the sandbox.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from swebox.sandbox.tarstream import CHUNK, extract_stream, tar_stream
from swebox.server.state import Server


async def _spool(request: Request, limit: int, into: Path) -> int:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes is over the server's limit of "
                            f"{limit} bytes")
    size = 0
    with open(into, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"upload is over the server's limit of {limit} bytes")
            out.write(chunk)
    return size


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield block


def file_routes(server: Server) -> APIRouter:
    r = APIRouter()
    owner = Depends(server.owner)

    @r.put("/sandboxes/{sid}/file", status_code=204)
    async def write_file(sid: str, request: Request, path: str = Query(min_length=1),
                         mode: int = Query(0o644, ge=0, le=0o7777),
                         who: str = owner) -> Response:
        server.entry(who, sid)
        with tempfile.TemporaryDirectory(prefix="swebox-up-") as tmp:
            body = Path(tmp) / "body"
            await _spool(request, server.max_upload, body)

            def put() -> None:
                with server.using(who, sid) as sb:
                    sb.write_file(path, body.read_bytes(), mode)

            await run_in_threadpool(put)
        return Response(status_code=204)

    @r.get("/sandboxes/{sid}/file", response_class=Response,
           responses={200: {"content": {"application/octet-stream": {}}}})
    def read_file(sid: str, path: str = Query(min_length=1), who: str = owner) -> Response:
        with server.using(who, sid) as sb:
            data = sb.read_file(path)
        return Response(data, media_type="application/octet-stream")

    @r.put("/sandboxes/{sid}/archive", status_code=204)
    async def upload(sid: str, request: Request, path: str = Query(min_length=1),
                     who: str = owner) -> Response:
        server.entry(who, sid)
        with tempfile.TemporaryDirectory(prefix="swebox-up-") as tmp:
            body, tree = Path(tmp) / "body.tar", Path(tmp) / "tree"
            await _spool(request, server.max_upload, body)

            def put() -> None:
                extract_stream(_chunks(body), tree)
                os.unlink(body)
                with server.using(who, sid) as sb:
                    sb.upload(tree, path)

            await run_in_threadpool(put)
        return Response(status_code=204)

    @r.get("/sandboxes/{sid}/archive", response_class=StreamingResponse,
           responses={200: {"content": {"application/x-tar": {}}}})
    def download(sid: str, path: str = Query(min_length=1), who: str = owner) -> Response:
        tmp = Path(tempfile.mkdtemp(prefix="swebox-down-"))
        try:
            with server.using(who, sid) as sb:
                sb.download(path, tmp / "tree")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

        def body() -> Iterator[bytes]:
            try:
                yield from tar_stream(tmp / "tree", "tree")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        return StreamingResponse(body(), media_type="application/x-tar")

    return r
