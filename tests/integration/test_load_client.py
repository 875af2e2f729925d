"""The benchmarks' load client (benchmarks/wsclient.py) stamps each message with the
time the kernel had it, not the time its process read it, over plain TCP and over TLS,
on real sockets on 127.0.0.1.

The client shares this event loop, so it cannot read while the server's handler holds
the loop: the handler holds it for HELD_S after a send, and the message's stamp must
come well before its read. A stamp taken at the read fails that. (Comparing the stamp
with the moment the handler noted after sending is not enough: on loopback the
receiving side's work usually runs inside the send, but the kernel may defer it, and
once a CI run saw the stamp 14 µs after that moment.)"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from benchmarks.wsclient import SO_TIMESTAMPNS, WsClient, insecure_context
from loudsync_tui.security.certificate import load_or_create
from tests.support.waiting import eventually

HELD_S = 0.05
"""How long the handler keeps the shared loop busy after sending the first message."""


def keep_busy(seconds: float) -> None:
    """Work without yielding, as a busy guest process would: not a wait for an event."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


@pytest.fixture
async def kernel_stamps() -> AsyncIterator[None]:
    """Receive stamps on before the test's socket exists. Linux turns them on for the
    whole machine when the first socket asks, a moment later (a deferred switch), and a
    socket's first reads came unstamped now and then when this test was that socket. A
    UDP socket that asks, kept open through the test, sends itself a datagram until one
    comes back stamped."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.setblocking(False)
    probe.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def stamped() -> bool:
        probe.sendto(b".", probe.getsockname())
        try:
            _, ancillary, _, _ = probe.recvmsg(16, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return False
        return any(kind == SO_TIMESTAMPNS for _, kind, _ in ancillary)

    try:
        await eventually(stamped, 5)
        yield
    finally:
        probe.close()


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
@pytest.mark.usefixtures("kernel_stamps")
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
        keep_busy(HELD_S)  # "first" sits in the client's socket meanwhile
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
    assert sent_by[0] + HELD_S <= read
    assert read - arrived >= HELD_S / 2  # stamped on arrival, long before the read
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
