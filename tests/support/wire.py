"""A WebSocket client written by hand over a raw socket, for what a well-behaved client
never does: stop reading, send invalid UTF-8 in a text frame, garbage, half a request.

It reads from the socket only when asked (`recv_frame`, `wait_closed`), so a test can
let the host's writes pile up in the kernel and in the host's transport buffer.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
PING = 0x9
PONG = 0xA


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """One WebSocket frame; client frames are masked (RFC 6455, 5.3)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _mask(payload, key)


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


class WireClient:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int | None = None) -> WireClient:
        """A TCP connection to 127.0.0.1:`port`; `rcvbuf` shrinks the receive window."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    @classmethod
    async def websocket(cls, port: int, *, rcvbuf: int | None = None) -> WireClient:
        """Connected and past the opening handshake (101), ready for frames."""
        client = await cls.open(port, rcvbuf=rcvbuf)
        head = await client.handshake()
        if not head.startswith(b"HTTP/1.1 101"):
            client.close()
            raise AssertionError(f"handshake refused: {head!r}")
        return client

    async def send(self, data: bytes) -> None:
        await self._loop.sock_sendall(self.sock, data)

    async def handshake(self, path: str = "/", timeout: float = 5.0) -> bytes:
        """Send the HTTP upgrade request; return the response head."""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await self.send(request.encode())
        async with asyncio.timeout(timeout):
            while b"\r\n\r\n" not in self._buffer:
                chunk = await self._loop.sock_recv(self.sock, 4096)
                if not chunk:
                    raise ConnectionError(f"closed during the handshake: {self._buffer!r}")
                self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        return head

    async def send_frame(self, opcode: int, payload: bytes) -> None:
        await self.send(frame(opcode, payload))

    async def send_text(self, text: str | bytes) -> None:
        """A text frame; bytes go out unchecked, so they may be invalid UTF-8."""
        await self.send_frame(TEXT, text.encode() if isinstance(text, str) else text)

    async def _fill(self, n: int) -> None:
        while len(self._buffer) < n:
            chunk = await self._loop.sock_recv(self.sock, 65536)
            if not chunk:
                raise ConnectionError("closed by the peer")
            self._buffer += chunk

    async def recv_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """The next (opcode, payload) from the server (unmasked, unfragmented)."""
        async with asyncio.timeout(timeout):
            await self._fill(2)
            length = self._buffer[1] & 0x7F
            offset = 2
            if length == 126:
                await self._fill(4)
                length = struct.unpack("!H", self._buffer[2:4])[0]
                offset = 4
            elif length == 127:
                await self._fill(10)
                length = struct.unpack("!Q", self._buffer[2:10])[0]
                offset = 10
            await self._fill(offset + length)
            opcode = self._buffer[0] & 0x0F
            payload = self._buffer[offset : offset + length]
            self._buffer = self._buffer[offset + length :]
            return opcode, payload

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Read frames until a close frame (its code) or the end of the stream (None)."""
        try:
            while True:
                opcode, payload = await self.recv_frame(timeout)
                if opcode == CLOSE:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        except (ConnectionError, OSError):
            return None

    async def wait_closed(self, timeout: float = 5.0) -> float:
        """Drain everything until the host ends the TCP stream; returns how long it took."""
        start = time.monotonic()
        async with asyncio.timeout(timeout):
            try:
                while await self._loop.sock_recv(self.sock, 1 << 20):
                    pass
            except (ConnectionError, OSError):
                pass
        return time.monotonic() - start

    def close(self) -> None:
        self.sock.close()
