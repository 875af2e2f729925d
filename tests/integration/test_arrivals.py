"""Messages are stamped when their bytes are read (net/arrivals.py), not when a reader
gets to them: the receive stamps of the session clock. Real sockets on 127.0.0.1.

Each side here reads nothing until the connection has closed, so every message waits in
`websockets`' queue: a stamp taken by the reader would come after the close, a stamp
taken at the read comes before it."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, serve

from loudsync_tui.net import arrivals
from loudsync_tui.net.arrivals import StampedClientConnection, StampedServerConnection

SENT: list[str | bytes] = ["one", b"two", "three", "x" * 100_000]
"""Text, binary, a fragmented message (sent in pieces below) and one over many reads."""


async def send_all(ws: Connection) -> None:
    await ws.send(SENT[0])
    await ws.ping()  # control frames are no messages: no stamp
    await ws.send(SENT[1])
    await ws.send(["th", "re", "e"])
    await ws.send(SENT[3])


async def read_after_close(
    ws: StampedClientConnection | StampedServerConnection,
) -> tuple[list[str | bytes], list[int], int]:
    """Wait for the close, then read every message with its stamp; and when the close
    was seen."""
    await asyncio.wait_for(ws.wait_closed(), 10)
    closed_us = arrivals.monotonic_us()
    got: list[str | bytes] = []
    stamps: list[int] = []
    async for message in ws:
        got.append(message)
        stamps.append(ws.arrival_us())
    return got, stamps, closed_us


async def test_the_guest_stamps_each_message_when_it_is_read() -> None:
    async def handler(ws: ServerConnection) -> None:
        await send_all(ws)
        await ws.close()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        before_us = arrivals.monotonic_us()
        async with connect(
            f"ws://127.0.0.1:{port}", create_connection=StampedClientConnection
        ) as ws:
            assert isinstance(ws, StampedClientConnection)
            got, stamps, closed_us = await read_after_close(ws)
            assert got == SENT
            assert len(stamps) == len(SENT)
            assert stamps == sorted(stamps)
            assert before_us <= stamps[0]
            assert stamps[-1] <= closed_us
            assert ws.arrival_us() >= closed_us  # none left: now


async def test_the_host_stamps_each_message_when_it_is_read() -> None:
    results: asyncio.Queue[tuple[list[str | bytes], list[int], int]] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        assert isinstance(ws, StampedServerConnection)
        await results.put(await read_after_close(ws))

    async with serve(handler, "127.0.0.1", 0, create_connection=StampedServerConnection) as server:
        port = server.sockets[0].getsockname()[1]
        before_us = arrivals.monotonic_us()
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            await send_all(ws)
        got, stamps, closed_us = await asyncio.wait_for(results.get(), 10)
    assert got == SENT
    assert stamps == sorted(stamps)
    assert before_us <= stamps[0]
    assert stamps[-1] <= closed_us
