"""A TCP port of its own for each V1 agent server: bytes relayed both ways to the agent
server's unix socket, nothing parsed (HTTP, keep-alive and websockets alike).

Why a port and not a path under the swebox server: OpenHands' `RemoteWorkspace` builds its
httpx client with `base_url=url` and then asserts `client.base_url == url`, which httpx makes
false for any URL with a path (it appends a slash). So a V1 runtime's `url` must be a bare
`scheme://host:port`, as OpenHands' own runtime service gives each runtime a host of its own.

All relays share one event loop in a daemon thread; a relay closes its listener and every
connection it carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()
CHUNK = 256 * 1024


def _relay_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="swebox-agent-relay",
                             daemon=True).start()
            _loop = loop
        return _loop


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError, RuntimeError):
        writer.close()


class Relay:
    """Listen on `host` (port `port`, 0: any free one) and relay each connection to the unix
    socket at `path`. `port` is the port it got."""

    def __init__(self, host: str, path: str, port: int = 0) -> None:
        self.path = path
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = _relay_loop()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, host, port), self._loop)
        self._server = fut.result(timeout=30)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.path)
        except OSError:
            self._writers.discard(writer)
            writer.close()
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    def close(self) -> None:
        def stop() -> None:
            self._server.close()
            for w in list(self._writers):
                with contextlib.suppress(Exception):
                    w.close()
            self._writers.clear()

        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(stop)
