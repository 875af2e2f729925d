"""The host's TLS connections keep small buffers (net/tls_buffers.py) and lose nothing for
it: large frames arrive whole and bursts in order, both ways, over real sockets on
127.0.0.1. Guests here refuse compression, so the bytes on the wire are the frame's own."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import random
import ssl
import string
from asyncio import sslproto
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from loudsync_tui.net.host_service import HostService
from loudsync_tui.net.server import HostConnection
from loudsync_tui.net.tls_buffers import (
    TLS_READ_BUFFER,
    TLS_WRITE_PIECE,
    shared_tls_read_buffer,
    use_small_tls_buffers,
)
from loudsync_tui.protocol import CloseCode, MemberList, Pong, now_ms
from loudsync_tui.store import AppStore
from tests.integration.conftest import FAST_HOST
from tests.support.raw import RawGuest
from tests.support.waiting import within

ASYNCIO_READ_BUFFER = sslproto.SSLProtocol.max_size
"""What asyncio gives each TLS connection (256 KiB on CPython 3.11 to 3.13)."""

HostMaker = Callable[..., Any]


@pytest.fixture
async def host_of(tmp_path: Path) -> AsyncIterator[HostMaker]:
    """A host, over TLS or not, that lets a guest send a burst and be sent megabytes at
    once, and waits for slow joins (TLS handshakes under a loaded test run)."""
    hosts: list[HostService] = []

    async def make(*, tls: bool) -> HostService:
        config = replace(
            FAST_HOST,
            tls=tls,
            key_dir=str(tmp_path / "host"),
            join_timeout=5.0,
            heartbeat_interval=5.0,
            heartbeat_timeout=30.0,
            rate_burst=10_000,
            max_write_buffer=64 * 1024 * 1024,
        )
        host = HostService(config, AppStore())
        await host.start()
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        await host.aclose()


async def joined(host: HostService, device_id: str, *, tls: bool) -> RawGuest:
    """A guest that asked for audio, joined, without compression."""
    guest = await RawGuest.connect(host.port, tls=tls, compression=None)
    await guest.join(device_id, audio=True)
    await guest.recv_type(MemberList)
    return guest


def connection_of(host: HostService) -> ServerConnection:
    """The host's side of its only guest's connection."""
    (ws,) = host.server._sockets.values()
    return ws


def padded_ping(timestamp: int, size: int) -> str:
    """A PING of exactly `size` bytes: an unknown field the host ignores, filled with
    letters no compression would shrink much, makes up the rest."""
    base = json.dumps({"type": "PING", "timestamp": timestamp, "padding": ""})
    letters = random.Random(timestamp).choices(string.ascii_letters, k=size - len(base))
    text = json.dumps({"type": "PING", "timestamp": timestamp, "padding": "".join(letters)})
    assert len(text.encode()) == size
    return text


def writes_during(ws: ServerConnection, action: Callable[[], None]) -> list[int]:
    """The sizes of the writes to `ws`'s transport while `action` runs (sends never wait,
    so all of a send's writes happen then); over TLS, what OpenSSL is handed to encrypt,
    whether straight (`write_through`) or from the TLS layer's queue."""
    return counted_writes(ws, action)[0]


def counted_writes(ws: ServerConnection, action: Callable[[], None]) -> tuple[list[int], int]:
    """(`writes_during`, how many writes went to the TLS transport, through its queue)."""
    transport: Any = ws.transport
    tls = getattr(transport, "_ssl_protocol", None)
    target: Any = transport if tls is None else tls._sslobj
    write, queued = target.write, transport.write
    sizes: list[int] = []
    through_queue = 0

    def counted(data: bytes | bytearray | memoryview) -> Any:
        sizes.append(len(data))
        return write(data)

    def queue(data: bytes | bytearray | memoryview) -> None:
        nonlocal through_queue
        through_queue += 1
        queued(data)

    target.write = counted
    if tls is not None:
        transport.write = queue
    try:
        action()
    finally:
        del target.write  # the class's method again
        if tls is not None:
            del transport.write
    return sizes, through_queue


async def next_binary(guest: RawGuest) -> bytes:
    """The next binary frame, skipping any text the host sends meanwhile."""
    async with asyncio.timeout(10):
        while True:
            data = await guest.ws.recv()
            if isinstance(data, bytes):
                return data


@pytest.mark.parametrize("tls", [True, False], ids=["wss", "ws"])
async def test_a_frame_at_the_size_limit_reaches_the_host_whole(
    host_of: HostMaker, tls: bool
) -> None:
    host = await host_of(tls=tls)
    guest = await joined(host, "dev-a", tls=tls)
    limit = host.config.max_frame_size
    stamp = now_ms()
    await guest.send(padded_ping(stamp, limit))
    pong = await guest.recv_type(Pong, timeout=10)
    assert pong.ping_timestamp == stamp  # read whole: one byte short and it is not JSON
    await guest.close()


@pytest.mark.parametrize("tls", [True, False], ids=["wss", "ws"])
async def test_large_frames_reach_the_guest_whole(host_of: HostMaker, tls: bool) -> None:
    host = await host_of(tls=tls)
    guest = await joined(host, "dev-a", tls=tls)
    # Around the piece size, near the frame limit, and beyond asyncio's own read buffer.
    for size in (TLS_WRITE_PIECE - 4, TLS_WRITE_PIECE + 1, 65_000, ASYNCIO_READ_BUFFER + 1000):
        frame = os.urandom(size)
        host.server.send_audio(host.core.audio_conns(), frame)
        assert await next_binary(guest) == frame
    await guest.close()


@pytest.mark.parametrize("tls", [True, False], ids=["wss", "ws"])
async def test_the_host_ending_the_session_closes_each_link_at_once(
    host_of: HostMaker, tls: bool
) -> None:
    host = await host_of(tls=tls)
    guest = await joined(host, "dev-a", tls=tls)
    # The host ends the stream itself once the closing handshake is done (over TLS: it
    # closes the transport); were it left to the guest, the host would cut it after
    # CLOSE_DEADLINE (2 s).
    await within(host.aclose(), 1.5)
    assert await guest.closed() == CloseCode.GOING_AWAY
    await within(guest.ws.wait_closed(), 1.0)


async def test_a_burst_each_way_arrives_whole_and_in_order_over_tls(host_of: HostMaker) -> None:
    host = await host_of(tls=True)
    guest = await joined(host, "dev-a", tls=True)

    # Guest to host: 500 PINGs back to back, from small to 40 KB; a PONG each, in order.
    first = now_ms()
    stamps = [first + i for i in range(500)]
    for i, stamp in enumerate(stamps):
        await guest.send(padded_ping(stamp, 100 + (i * 997) % 40_000))
    pongs = [await guest.recv_type(Pong, timeout=10) for _ in stamps]
    assert [p.ping_timestamp for p in pongs] == stamps

    # Host to guest: 500 binary frames in one go, sizes across the piece boundary.
    sizes = [100, 3_864, TLS_WRITE_PIECE, TLS_WRITE_PIECE + 1, 40_000]
    frames = [i.to_bytes(4, "big") + os.urandom(sizes[i % len(sizes)]) for i in range(500)]

    def burst() -> None:
        for frame in frames:
            host.server.send_audio(host.core.audio_conns(), frame)

    pieces, queued = counted_writes(connection_of(host), burst)
    # The first pieces go straight to the socket; once it is full they queue in the TLS
    # layer (and every piece after them, to keep the order).
    assert 0 < queued < len(pieces)
    received = [await next_binary(guest) for _ in frames]
    assert [int.from_bytes(f[:4], "big") for f in received] == list(range(500))
    assert received == frames
    await guest.close()


async def test_tls_connections_share_one_small_read_buffer_and_write_in_pieces(
    host_of: HostMaker,
) -> None:
    host = await host_of(tls=True)
    guests = [await joined(host, f"dev-{n}", tls=True) for n in "ab"]
    buffer = shared_tls_read_buffer()
    connections = list(host.server._sockets.values())
    assert len(connections) == 2
    for ws in connections:
        assert isinstance(ws, HostConnection)
        ssl_protocol = ws.transport._ssl_protocol  # type: ignore[attr-defined]
        assert ssl_protocol.max_size == TLS_READ_BUFFER < ASYNCIO_READ_BUFFER
        assert ssl_protocol._ssl_buffer_view is buffer
        assert ssl_protocol._ssl_buffer is buffer.obj
    # Only the host's server: asyncio's class and the guests' own TLS are as they were.
    assert sslproto.SSLProtocol.max_size == ASYNCIO_READ_BUFFER
    for guest in guests:
        mine = guest.ws.transport._ssl_protocol  # type: ignore[attr-defined]
        assert mine.max_size == ASYNCIO_READ_BUFFER
        assert len(mine._ssl_buffer) == ASYNCIO_READ_BUFFER

    # A frame at the limit is read through the shared buffer too: none of its own.
    stamp = now_ms()
    await guests[0].send(padded_ping(stamp, host.config.max_frame_size))
    assert (await guests[0].recv_type(Pong, timeout=10)).ping_timestamp == stamp
    for ws in connections:
        assert ws.transport._ssl_protocol._ssl_buffer_view is buffer  # type: ignore[attr-defined]

    # What the host sends goes to the TLS layer a record's worth at a time, each straight
    # to the socket while nothing waits (`write_through`).
    frame = os.urandom(3 * TLS_WRITE_PIECE + 5)
    writes, queued = counted_writes(
        connections[0], lambda: host.server.send_audio(host.core.audio_conns(), frame)
    )
    for guest in guests:
        assert await next_binary(guest) == frame
    assert queued == 0
    assert writes[:3] == [TLS_WRITE_PIECE] * 3
    assert len(writes) == 4
    assert sum(writes) == len(frame) + 4  # with its WebSocket header (2 + 2 length bytes)
    for guest in guests:
        await guest.close()


async def test_plain_connections_are_untouched(host_of: HostMaker) -> None:
    host = await host_of(tls=False)
    guest = await joined(host, "dev-a", tls=False)
    ws = connection_of(host)
    assert isinstance(ws, HostConnection)
    assert ws.transport.get_extra_info("sslcontext") is None
    assert not hasattr(ws.transport, "_ssl_protocol")
    frame = os.urandom(3 * TLS_WRITE_PIECE + 5)
    writes = writes_during(ws, lambda: host.server.send_audio(host.core.audio_conns(), frame))
    assert await next_binary(guest) == frame
    assert writes == [len(frame) + 4]  # one write, header and frame, as websockets does
    await guest.close()


async def test_a_tls_layer_not_built_as_expected_is_left_as_it_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def tls_layer() -> sslproto.SSLProtocol:
        return sslproto.SSLProtocol(loop, asyncio.Protocol(), context, None, server_side=True)

    # asyncio's, as expected: switched to the shared buffer.
    usual = tls_layer()
    assert use_small_tls_buffers(usual._app_transport)
    assert usual.max_size == TLS_READ_BUFFER
    assert usual._ssl_buffer_view is shared_tls_read_buffer()

    # Without the buffer this code knows: nothing changes.
    other = tls_layer()
    other._ssl_buffer = None  # type: ignore[assignment]
    with caplog.at_level(logging.DEBUG, logger="loudsync_tui.net.tls_buffers"):
        assert not use_small_tls_buffers(other._app_transport)
    assert other.max_size == ASYNCIO_READ_BUFFER
    assert "left as is" in caplog.text

    # Nor without the write queue `write_through` looks at.
    unlike = tls_layer()
    del unlike._write_backlog
    assert use_small_tls_buffers(unlike._app_transport) is None
    assert unlike.max_size == ASYNCIO_READ_BUFFER

    # Another TLS layer altogether (uvloop's, say): nothing to change either.
    class ForeignTLS(asyncio.Transport):
        _ssl_protocol = object()

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return context if name == "sslcontext" else default

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="loudsync_tui.net.tls_buffers"):
        assert not use_small_tls_buffers(ForeignTLS())
    assert "not asyncio's SSLProtocol" in caplog.text

    unlike._write_backlog = collections.deque()
    for layer in (usual, other, unlike):
        layer._app_transport.abort()
