"""`fanout.send_to_all` over real sockets on 127.0.0.1: a message framed once reaches every
open connection whole and in order, text and binary, past permessage-deflate without
breaking it; closed connections and one in the middle of a fragmented message are
skipped, and the others still get theirs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, broadcast, serve

from loudsync_tui.net.compression import TextOnlyDeflateFactory
from loudsync_tui.net.fanout import frame, send_to_all
from tests.support.waiting import eventually

Serving = tuple[list[ServerConnection], list[ClientConnection]]


@pytest.fixture
async def crowd() -> AsyncIterator[Callable[[int], Awaitable[Serving]]]:
    """`n` guests, each offering permessage-deflate as ours do, joined to a server that
    negotiates the host's extension; (server's connections, guests)."""
    server_side: list[ServerConnection] = []
    guests: list[ClientConnection] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        server_side.append(ws)
        await done.wait()

    async with serve(
        handler, "127.0.0.1", 0, ping_interval=None, extensions=[TextOnlyDeflateFactory()]
    ) as server:
        port = server.sockets[0].getsockname()[1]

        async def make(n: int) -> Serving:
            for _ in range(n):
                guests.append(await connect(f"ws://127.0.0.1:{port}", ping_interval=None))
            await eventually(lambda: len(server_side) == n)
            return server_side, guests

        yield make
        done.set()
        for guest in guests:
            await guest.close()


def test_one_frame_is_the_bytes_any_reader_expects() -> None:
    assert frame(b"hi", text=True) == b"\x81\x02hi"
    assert frame(b"\x00" * 200, text=False)[:4] == b"\x82\x7e\x00\xc8"  # 16-bit length


async def test_text_and_audio_reach_everyone_whole_and_in_order(
    crowd: Callable[[int], Awaitable[Serving]],
) -> None:
    server_side, guests = await crowd(5)
    assert all(guest.protocol.extensions for guest in guests)  # deflate negotiated
    audio = bytes(range(256)) * 300  # larger than one TLS record or socket read
    send_to_all(server_side, b'{"type":"MEMBER_JOINED"}', text=True)
    send_to_all(server_side, audio, text=False)
    broadcast(server_side, '{"type":"AFTER"}')  # deflated: both contexts must be intact
    for guest in guests:
        assert await asyncio.wait_for(guest.recv(), 5) == '{"type":"MEMBER_JOINED"}'
        assert await asyncio.wait_for(guest.recv(), 5) == audio
        assert await asyncio.wait_for(guest.recv(), 5) == '{"type":"AFTER"}'


async def test_closed_and_busy_connections_are_skipped_and_the_rest_served(
    crowd: Callable[[int], Awaitable[Serving]], caplog: pytest.LogCaptureFixture
) -> None:
    server_side, guests = await crowd(3)
    closed, busy, open_ = server_side
    await closed.close()
    more = asyncio.Event()

    async def fragments() -> AsyncIterator[str]:
        yield "first half, "
        await more.wait()
        yield "second half"

    sending = asyncio.create_task(busy.send(fragments()))
    await eventually(lambda: busy.send_in_progress is not None)
    with caplog.at_level(logging.WARNING):
        send_to_all(server_side, b"to all", text=True)
    assert "sending a fragmented message" in caplog.text
    more.set()
    await sending
    by_server = {id(ws): guest for ws, guest in zip(server_side, guests, strict=True)}
    assert await asyncio.wait_for(by_server[id(open_)].recv(), 5) == "to all"
    assert await asyncio.wait_for(by_server[id(busy)].recv(), 5) == "first half, second half"
    send_to_all(server_side, b"next", text=True)  # the busy one is served again
    assert await asyncio.wait_for(by_server[id(busy)].recv(), 5) == "next"
