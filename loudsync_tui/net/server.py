"""The host's WebSocket server: moves frames between sockets and `HostSession`.

It carries out the socket effects (send, broadcast, close) itself and hands every
other effect (member events, logs) to a callback. Sends never wait on a peer:
`websockets.broadcast` writes to each socket without awaiting, so one slow guest
cannot stall the others, and the order of frames on each connection is kept. What
waits unsent for a peer is bounded (`max_write_buffer`; past it the link is cut), and
so is a close (`CLOSE_DEADLINE`): a peer that stops reading cannot pin a socket.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import ssl
import weakref
from asyncio import sslproto
from collections.abc import Callable, Iterable

import msgspec
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from loudsync_tui.core.effects import Broadcast, Close, ConnId, HostEffect, Log, Send
from loudsync_tui.core.host import HostSession
from loudsync_tui.net.arrivals import StampedServerConnection, stamper
from loudsync_tui.net.compression import TextOnlyDeflateFactory
from loudsync_tui.net.fanout import send_to_all
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.net.tls_buffers import use_small_tls_buffers, write_in_pieces
from loudsync_tui.protocol import SessionAnswer, encode
from loudsync_tui.security.device_key import CHALLENGE_HEADER, new_nonce

log = logging.getLogger(__name__)

SESSION_INFO_PATH = "/session"
"""A plain HTTP GET here answers a `SessionAnswer`, so `join HOST[:PORT]` needs no id."""


FRAMED_ONCE_FROM = 100
"""A message to this many guests or more goes uncompressed, framed once for all (see
`fanout`); to fewer, deflated as ever: bytes matter more than the host's CPU in a small
session."""

CLOSE_DEADLINE = 2.0
"""Seconds a connection the host closes has to complete the closing handshake; then cut."""


class PortsUnavailable(OSError):
    """No port in the tried range could be bound."""


class HostConnection(StampedServerConnection):
    """A guest's connection to the host's server.

    It stamps each message as it is read (see `arrivals`): a PING's t2. Over TLS it uses
    small buffers (see `tls_buffers`): asyncio's TLS layer would keep a 256 KiB read buffer
    for each guest, and OpenSSL a write buffer as large as the largest frame the guest was
    ever sent.
    """

    _tls: sslproto.SSLProtocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio calls this once the TLS handshake is done, with the TLS transport.
        self._tls = use_small_tls_buffers(transport)
        super().connection_made(transport)

    def send_data(self) -> None:
        """What websockets does, except that over TLS frames go in small pieces."""
        if self._tls is None:
            super().send_data()
            return
        for data in self.protocol.data_to_send():
            if data:
                write_in_pieces(self.transport, data, self._tls)
            else:  # the end of the stream: TLS cannot half-close, so close (as websockets)
                self.transport.close()


class SessionServer:
    def __init__(
        self,
        session: HostSession,
        on_events: Callable[[list[HostEffect]], None],
        *,
        tick_period: float = 1.0,
    ) -> None:
        self.session = session
        self._on_events = on_events
        self._tick_period = tick_period
        self._sockets: dict[ConnId, ServerConnection] = {}
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        # The ticker and the closers; a close that fails on a dead link is expected.
        self._tasks = TaskOwner("host server", expected=(ConnectionClosed, OSError))
        self._challenges: weakref.WeakKeyDictionary[ServerConnection, str] = (
            weakref.WeakKeyDictionary()
        )
        self.port = 0

    async def listen(
        self, bind: str, port: int, tries: int, *, ssl_context: ssl.SSLContext | None = None
    ) -> int:
        """Bind `port`, or the next free one of `tries` ports; returns the port bound."""
        cfg = self.session.config
        candidates = [0] if port == 0 else range(port, min(port + tries, 65536))
        for candidate in candidates:
            try:
                self._server = await serve(
                    self._handle,
                    bind,
                    candidate,
                    process_request=self._process_request,
                    process_response=self._process_response,
                    max_size=cfg.max_frame_size,
                    ssl=ssl_context,
                    open_timeout=cfg.join_timeout,
                    ping_interval=None,  # the session's own heartbeat deadlines do this job
                    logger=log,
                    create_connection=HostConnection,  # small TLS buffers
                    extensions=[TextOnlyDeflateFactory()],  # audio frames go uncompressed
                )
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            sock = next(iter(self._server.sockets))
            self.port = int(sock.getsockname()[1])
            self._ticker = self._tasks.spawn(self._tick_forever(), name="host-ticks")
            return self.port
        raise PortsUnavailable(
            errno.EADDRINUSE,
            f"port {port} on {bind} is in use"
            if tries == 1
            else f"ports {port}-{port + tries - 1} on {bind} are all in use",
        )

    async def close(self, reason: str) -> None:
        """SESSION_CLOSED to everyone, close every connection with 1001, stop listening."""
        self.apply(self.session.stop(reason))
        if self._ticker is not None:
            self._ticker.cancel()
        await self._tasks.wait(2.0)  # the closes just asked for; each is bounded anyway
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await self._tasks.aclose()

    def unsent_bytes(self) -> dict[ConnId, int]:
        """Bytes written to each connection that its peer has not taken yet (host side)."""
        return {conn: ws.transport.get_write_buffer_size() for conn, ws in self._sockets.items()}

    def send_audio(self, conns: Iterable[ConnId], data: bytes) -> None:
        """One binary audio frame, the same bytes to each connection; never waits."""
        self._write(conns, data)

    def _write(self, conns: Iterable[ConnId], data: str | bytes) -> None:
        """A message (text) or an audio frame (bytes) to each of `conns` still connected,
        without waiting; text to FRAMED_ONCE_FROM of them or more, and audio, framed once for
        all (`fanout`)."""
        targets = [(c, ws) for c in conns if (ws := self._sockets.get(c)) is not None]
        sockets = [ws for _, ws in targets]
        if isinstance(data, bytes):
            send_to_all(sockets, data, text=False)
        elif len(sockets) >= FRAMED_ONCE_FROM:
            send_to_all(sockets, data.encode(), text=True)
        else:
            broadcast(sockets, data)
        for conn, ws in targets:
            self._check_backlog(conn, ws)

    def apply(self, effects: Iterable[HostEffect]) -> None:
        """Carry out the socket effects; hand the rest (member events, logs) on in one go,
        so one input (a JOIN: a member added and a log line) is one store change."""
        events: list[HostEffect] = []
        for effect in effects:
            if isinstance(effect, Send):
                self._write([effect.conn], encode(effect.message))
            elif isinstance(effect, Broadcast):
                self._write(effect.conns, encode(effect.message))
            elif isinstance(effect, Close):
                ws = self._sockets.get(effect.conn)
                if ws is not None:
                    self._close_later(ws, effect.code, effect.reason)
            else:
                events.append(effect)
        if events:
            self._on_events(events)

    # Sockets ------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        conn = next(self._ids)
        self._sockets[conn] = ws
        address = _format_address(ws.remote_address)
        challenge = self._challenges.pop(ws, None)
        try:
            self.apply(self.session.connected(conn, address, challenge=challenge))
            stamp = stamper(ws, self.session.clock)
            async for data in ws:
                self.apply(self.session.received(conn, data, stamp()))
        except ConnectionClosed:
            pass
        finally:
            self._sockets.pop(conn, None)
            self.apply(self.session.disconnected(conn))

    def _check_backlog(self, conn: ConnId, ws: ServerConnection) -> None:
        """Cut a connection whose peer has left more than `max_write_buffer` bytes unread.

        Sends never wait, so a peer that stops reading would make the host buffer for it
        without bound. Past the limit the link is aborted (no close frame could get through
        the backlog; the guest sees 1006) and treated as dropped: the place is held for a
        resume, as for any lost link.
        """
        transport = ws.transport
        limit = self.session.config.max_write_buffer
        if transport.is_closing() or transport.get_write_buffer_size() <= limit:
            return
        member = self.session.member_of(conn)
        self._on_events(
            [
                Log(
                    "warning",
                    f"{member or _format_address(ws.remote_address)} stopped reading "
                    f"({transport.get_write_buffer_size()} bytes unsent, limit {limit}); "
                    "dropped the link",
                )
            ]
        )
        transport.abort()

    def _close_later(self, ws: ServerConnection, code: int, reason: str) -> None:
        self._tasks.spawn(self._close(ws, code, reason), name="host-close")

    @staticmethod
    async def _close(ws: ServerConnection, code: int, reason: str) -> None:
        """Close with `code`, but never wait more than CLOSE_DEADLINE: a peer that stopped
        reading never takes the close frame (websockets would wait on the full buffer
        forever), so it is then cut."""
        try:
            async with asyncio.timeout(CLOSE_DEADLINE):
                await ws.close(code, reason)
        except TimeoutError:
            ws.transport.abort()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._tick_period)
            try:
                self.apply(self.session.tick())
            except Exception:  # a bug in one tick must not stop the heartbeat checks
                log.exception("host tick failed")

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != SESSION_INFO_PATH:
            return None
        answer = SessionAnswer.of(self.session.session_info(), self.session.pin is not None)
        body = msgspec.json.encode(answer)
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return Response(200, "OK", headers, body)

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        """Give every accepted handshake a fresh challenge for the JOIN proof to sign; in a
        header, so the frame stream stays as Phase 1 clients know it."""
        if response.status_code == 101:
            challenge = new_nonce()
            response.headers[CHALLENGE_HEADER] = challenge
            self._challenges[connection] = challenge


def _format_address(remote: object) -> str:
    if isinstance(remote, tuple) and len(remote) >= 2:
        host, port = remote[0], remote[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(remote)
