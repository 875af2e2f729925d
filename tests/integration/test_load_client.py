"""The benchmarks' load client (benchmarks/wsclient.py) stamps each message with the
time the kernel had it, not the time its process read it, over plain TCP and over TLS,
on real sockets on 127.0.0.1.

On loopback a send returns once the bytes are in the receiver's socket, and the client
shares this event loop, so it cannot read before the server's handler yields: a
message's stamp must come before the moment the handler noted after sending, and the
client's read after it. A stamp taken at the read fails the first check."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from benchmarks.wsclient import WsClient, insecure_context
from loudsync_tui.security.certificate import load_or_create


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_a_message_is_stamped_when_it_arrived_not_when_it_was_read(
    secure: bool, tmp_path: Path
) -> None:
    server_tls = None
    if secure:
        cert = load_or_create(tmp_path / "tls")
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(cert.cert_path, cert.key_path)
    sent_by: list[float] = []
    got: list[tuple[bytes, float, float]] = []
    first, received = asyncio.Event(), asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("first")
        sent_by.append(time.monotonic())
        await first.wait()  # one read, one message: a read's stamp is its last bytes'
        await ws.send("x" * 70_000)  # over many reads
        sent_by.append(time.monotonic())
        await ws.wait_closed()

    def on_message(client: WsClient, data: bytes, at: float) -> None:
        got.append((data, at, client.read_at))
        (received if len(got) == 2 else first).set()

    async with serve(handler, "127.0.0.1", 0, ssl=server_tls, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        tls = insecure_context() if secure else None
        client = await WsClient.connect(port, on_message, tls=tls)
        client.send_text(b"go")
        async with asyncio.timeout(5):
            await received.wait()
        client.close()
        async with asyncio.timeout(5):
            await client.closed
    assert [data for data, _, _ in got] == [b"first", b"x" * 70_000]
    (_, arrived, read), (_, last_arrived, last_read) = got
    assert arrived <= sent_by[0] <= read
    assert sent_by[0] < last_arrived <= last_read
    assert client.transport is not None
    assert client.transport.unstamped == 0


async def test_a_refused_connection_is_refused_and_leaves_no_socket_open() -> None:
    spare = socket.socket()
    spare.bind(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()  # bound, then closed: nothing listens there now
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(ConnectionRefusedError):
        await WsClient.connect(port)
    assert len(os.listdir("/proc/self/fd")) == before
