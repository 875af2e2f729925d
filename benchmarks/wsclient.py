"""A minimal WebSocket client on a bare socket, for load generation.

The `websockets` client costs a task and several wake-ups per message; with a
thousand guests in one process that cost, not the host, would be what we measure.
This client parses frames straight from each read and stamps each message with the
time the kernel received the read that completed it (SO_TIMESTAMPNS: over TCP, the
read's last segment), on the monotonic clock
(system-wide on Linux, so comparable across processes): the figure is when a guest
had the message, not when this process, busy with a thousand others, got to it.

It offers permessage-deflate exactly as the `websockets` client (and so
our real guests) does, so the host does the same work as for real guests; it sends
its own frames uncompressed, which the extension allows.

Over `wss://` it runs TLS itself through an `ssl.SSLObject` on memory buffers, without
verifying the certificate (a benchmark on loopback): asyncio's own TLS transport keeps
a 256 KiB read buffer per connection and several Python layers per read, which for
thousands of guests would weigh on the load generator, not on the server.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import struct
import time
import zlib
from collections.abc import Callable

OnMessage = Callable[["WsClient", bytes, float], None]

_DEFLATE_TAIL = b"\x00\x00\xff\xff"
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux's value where the socket module lacks the name (3.11 does)."""
_TIMESPEC = struct.Struct("@qq")
_STAMP_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
_READ_SIZE = 262_144


OPEN_TIMEOUT_S = 30.0
"""A TLS handshake or HTTP upgrade not done by then fails (TimeoutError), like a
real client's open timeout: no join can wait forever."""


class HandshakeError(Exception):
    """The server did not switch protocols."""


def insecure_context() -> ssl.SSLContext:
    """TLS 1.2 or later that accepts any certificate: loopback, self-signed servers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class StampedSocket:
    """A non-blocking TCP socket read by the event loop, each read stamped by the kernel.

    The stamp (SO_TIMESTAMPNS) is when the bytes reached this socket, not when this
    process got round to reading them: with a thousand guests in a few processes on a
    busy machine, the readers' own delay would otherwise be counted as the server's. It
    is taken on CLOCK_REALTIME and handed on in the monotonic clock's terms."""

    def __init__(self, sock: socket.socket, client: WsClient) -> None:
        self._sock = sock
        self._client = client
        self._loop = asyncio.get_running_loop()
        self._pending = bytearray()
        self._closing = False
        self._gone = False
        self.unstamped = 0
        """Reads that came without a kernel stamp (then the read time stands in)."""
        self._loop.add_reader(sock.fileno(), self._readable)

    @property
    def sock(self) -> socket.socket:
        """The socket itself (tests look at what the kernel holds for it)."""
        return self._sock

    @classmethod
    async def open(cls, port: int, client: WsClient) -> StampedSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        return cls(sock, client)

    def is_closing(self) -> bool:
        return self._closing

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if self._pending:
            self._pending += data
            return
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(data):
            self._pending += data[sent:]
            self._loop.add_writer(self._sock.fileno(), self._writable)

    def close(self) -> None:
        """Close once what is written has gone (at once if the peer stopped reading)."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._sock.fileno())
        if not self._pending:
            self._lost(None)

    def _writable(self) -> None:
        try:
            sent = self._sock.send(self._pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del self._pending[:sent]
        if not self._pending:
            self._loop.remove_writer(self._sock.fileno())
            if self._closing:
                self._lost(None)

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self._sock.recvmsg(_READ_SIZE, _STAMP_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        arrived = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                since = time.time_ns() - (seconds * 1_000_000_000 + nanoseconds)
                arrived = time.monotonic() - since / 1e9
        if arrived is None:
            self.unstamped += 1
            arrived = time.monotonic()
        self._client.data_received(data, arrived)

    def _lost(self, exc: Exception | None) -> None:
        if self._gone:
            return
        self._gone = self._closing = True
        fd = self._sock.fileno()
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        self._sock.close()
        self._pending.clear()
        self._client.connection_lost(exc)


class WsClient:
    def __init__(
        self, on_message: OnMessage | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.on_message = on_message
        self.transport: StampedSocket | None = None
        loop = asyncio.get_running_loop()
        self.secured: asyncio.Future[None] = loop.create_future()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls: ssl.SSLObject | None = None
        if tls is not None:
            self.tls = tls.wrap_bio(self._incoming, self._outgoing, server_side=False)
        else:
            self.secured.set_result(None)
        self._buffer = bytearray()
        self._handshaking = True
        self._inflater: zlib._Decompress | None = None
        self._inflate_bits = 15
        self._reset_inflater = False
        self._fragments: list[bytes] = []
        self._fragment_compressed = False
        self.queue: asyncio.Queue[tuple[bytes, float]] | None = None
        self.read_at = 0.0
        """When this process read the latest message (the `at` handed on is when it
        arrived); the gap is the reader's own delay."""

    @classmethod
    async def connect(
        cls,
        port: int,
        on_message: OnMessage | None = None,
        *,
        queued: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> WsClient:
        """Open TCP, then TLS when `tls` is given, do the HTTP upgrade; `queued` collects
        messages for `receive()`."""
        client = cls(on_message, tls)
        client.connection_made(await StampedSocket.open(port, client))
        if queued:
            client.queue = asyncio.Queue()
        try:
            await asyncio.wait_for(client.secured, OPEN_TIMEOUT_S)
            key = base64.b64encode(os.urandom(16)).decode()
            client._write(
                (
                    f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
                ).encode()
            )
            await asyncio.wait_for(client.opened, OPEN_TIMEOUT_S)
        except BaseException:
            client.close()  # a handshake that never ends must not hold its socket
            raise
        return client

    async def receive(self, within: float = 10.0) -> tuple[bytes, float]:
        """The next message and the monotonic time it arrived (needs `queued=True`)."""
        assert self.queue is not None
        return await asyncio.wait_for(self.queue.get(), within)

    def send_text(self, payload: bytes) -> None:
        self._send_frame(0x1, payload)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send_frame(0x8, (1000).to_bytes(2, "big"))
            self.transport.close()

    def tls_info(self) -> dict[str, str] | None:
        """The negotiated TLS version and cipher suite; None over plain TCP."""
        if self.tls is None or not self.secured.done():
            return None
        cipher = self.tls.cipher()
        return {"version": str(self.tls.version()), "cipher": cipher[0] if cipher else "?"}

    # Socket events ------------------------------------------------------------

    def connection_made(self, transport: StampedSocket) -> None:
        self.transport = transport
        if self.tls is not None:
            self._tls_handshake()

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.secured, self.opened):
            if not future.done():
                future.set_exception(HandshakeError(f"connection lost: {exc}"))
                future.exception()  # retrieved: one waiter is enough
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes, arrived: float) -> None:
        """Bytes read from the socket, and when the kernel had them."""
        self.read_at = time.monotonic()
        if self.tls is not None:
            data = self._decrypt(data)
            if not data:
                return
        self._buffer += data
        if self._handshaking and not self._handshake():
            return
        self._frames(arrived)

    # Internals ------------------------------------------------------------------

    def _tls_handshake(self) -> None:
        assert self.tls is not None
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            self._flush()
            self.secured.set_exception(HandshakeError(f"TLS: {exc}"))
            assert self.transport is not None
            self.transport.close()
            return
        else:
            self.secured.set_result(None)
        self._flush()

    def _decrypt(self, data: bytes) -> bytes:
        """Feed TLS records in; the application bytes they complete (maybe none)."""
        assert self.tls is not None
        self._incoming.write(data)
        if not self.secured.done():
            self._tls_handshake()
            if not self.secured.done() or self.secured.exception() is not None:
                return b""
        chunks: list[bytes] = []
        try:
            while chunk := self.tls.read(65536):
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLError):
            assert self.transport is not None
            self.transport.close()
        self._flush()  # TLS 1.3 may answer a key update
        return b"".join(chunks)

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending and self.transport is not None and not self.transport.is_closing():
            self.transport.write(pending)

    def _write(self, raw: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.tls is None:
            self.transport.write(raw)
        else:
            self.tls.write(raw)
            self._flush()

    def _handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        self._handshaking = False
        lines = head.split("\r\n")
        if " 101 " not in lines[0]:
            self.opened.set_exception(HandshakeError(lines[0]))
            assert self.transport is not None
            self.transport.close()
            return False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions" and "permessage-deflate" in value:
                for param in value.split(";")[1:]:
                    pname, _, pvalue = param.strip().partition("=")
                    if pname == "server_max_window_bits" and pvalue:
                        self._inflate_bits = int(pvalue)
                    elif pname == "server_no_context_takeover":
                        self._reset_inflater = True
                self._inflater = zlib.decompressobj(-self._inflate_bits)
        self.opened.set_result(None)
        return True

    def _frames(self, now: float) -> None:
        buf = self._buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length, offset = b1 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    return
                length, offset = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                if len(buf) < 10:
                    return
                length, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + length:
                return
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            opcode = b0 & 0x0F
            if opcode >= 0x8:
                self._control(opcode, payload)
                continue
            if opcode != 0:
                self._fragment_compressed = bool(b0 & 0x40)
            self._fragments.append(payload)
            if b0 & 0x80:
                data = b"".join(self._fragments)
                self._fragments.clear()
                if self._fragment_compressed and self._inflater is not None:
                    data = self._inflater.decompress(data + _DEFLATE_TAIL)
                    if self._reset_inflater:
                        self._inflater = zlib.decompressobj(-self._inflate_bits)
                if self.queue is not None:
                    self.queue.put_nowait((data, now))
                if self.on_message is not None:
                    self.on_message(self, data, now)

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == 0x9:  # ping
            self._send_frame(0xA, payload)
        elif opcode == 0x8 and self.transport is not None and not self.transport.is_closing():
            self._send_frame(0x8, payload[:2])
            self.transport.close()

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        n = len(payload)
        if n < 126:
            head = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        key = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
            n, "little"
        )
        self._write(head + mask + masked)
