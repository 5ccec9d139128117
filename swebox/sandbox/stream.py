"""Reading the engines' attach streams with bounded memory.

Docker and Podman multiplex stdout and stderr of a non-tty exec into frames: an 8-byte header
(stream id, three zero bytes, big-endian payload length) followed by the payload. docker-py's
own demuxer reads whole responses or blocks per frame without deadlines, so swebox parses the
raw socket itself: it needs per-call deadlines, a byte cap, and a marker search on the fly.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import deque
from typing import Any

from swebox.errors import SandboxTimeout, SessionClosed

STDOUT, STDERR = 1, 2
_HEADER = struct.Struct(">BxxxI")


def raw_socket(obj: Any) -> socket.socket:
    """The real socket under what docker-py's `exec_start(socket=True)` returns."""
    sock = getattr(obj, "_sock", obj)
    if not isinstance(sock, socket.socket):
        raise SessionClosed(f"engine returned an unexpected stream type {type(obj).__name__}")
    return sock


class CappedBuffer:
    """Keeps the first and last `limit // 2` bytes of everything written, and counts the rest.

    Memory stays bounded however much a command prints; the head shows how a run started and
    the tail how it ended (where test runners print their summaries).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_len = 0
        self.total = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        room = self.limit // 2 - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
            if not data:
                return
        keep = self.limit - self.limit // 2
        self._tail.append(data)
        self._tail_len += len(data)
        while self._tail and self._tail_len - len(self._tail[0]) >= keep:
            self._tail_len -= len(self._tail.popleft())

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def getvalue(self) -> bytes:
        tail = b"".join(self._tail)
        keep = self.limit - self.limit // 2
        if not self.truncated:
            return bytes(self._head) + tail
        dropped = self.total - len(self._head) - min(len(tail), keep)
        note = f"\n[... swebox: {dropped} bytes of output truncated ...]\n".encode()
        return bytes(self._head) + note + tail[-keep:]


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class FrameReader:
    """Reads multiplexed frames from a raw socket with deadlines."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()
        self.eof = False

    def _fill(self, deadline: float | None) -> bool:
        """Read more bytes; False at EOF. Raises SandboxTimeout past the deadline."""
        if deadline is None:
            self.sock.settimeout(None)
        else:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxTimeout("deadline passed while reading from the engine")
            self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(262144)
        except TimeoutError as e:
            raise SandboxTimeout("deadline passed while reading from the engine") from e
        except OSError as e:
            raise SessionClosed(f"engine stream broke: {e}") from e
        if not chunk:
            self.eof = True
            return False
        self._buf += chunk
        return True

    def read_frame(self, deadline: float | None = None) -> tuple[int, bytes] | None:
        """Next (stream id, payload), or None at end of stream."""
        while len(self._buf) < _HEADER.size:
            if not self._fill(deadline):
                return None
        stream, size = _HEADER.unpack_from(self._buf)
        while len(self._buf) < _HEADER.size + size:
            if not self._fill(deadline):
                return None
        payload = bytes(self._buf[_HEADER.size : _HEADER.size + size])
        del self._buf[: _HEADER.size + size]
        return stream, payload
