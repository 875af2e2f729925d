"""The benchmarks' load client (benchmarks/wsclient.py) stamps each message with the
time the kernel had it, not the time its process read it, over plain TCP and over TLS,
on real sockets on 127.0.0.1.

The client shares this event loop, so it cannot read while the server's handler holds
the loop. After a send the handler waits, without yielding, until the kernel holds the
bytes for the client (a send can return before they are there: once in CI the stamp
came 14 µs after the send returned, and once 50 ms after), notes the time, and holds
the loop for HELD_S more. The message's stamp must come before that note, and its read
after the hold: a stamp taken at the read fails."""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import socket
import ssl
import termios
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


def unread(sock: socket.socket) -> int:
    """Bytes the kernel holds for `sock` that it has not read (FIONREAD)."""
    count = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
    return count[0]


def there_now(sock: socket.socket, before: int, timeout: float = 5.0) -> float:
    """Without yielding: wait until more than `before` bytes wait in `sock`; the time."""
    deadline = time.monotonic() + timeout
    while unread(sock) <= before:
        if time.monotonic() > deadline:
            raise AssertionError("the message never reached the client's socket")
    return time.monotonic()


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
    there: list[float] = []
    second_from: list[float] = []
    clients: list[socket.socket] = []
    got: list[tuple[bytes, float, float]] = []
    first, received = asyncio.Event(), asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        before = unread(clients[0])
        await ws.send("first")
        there.append(there_now(clients[0], before))
        keep_busy(HELD_S)  # "first" sits in the client's socket meanwhile
        await first.wait()  # one read, one message: a read's stamp is its last bytes'
        second_from.append(time.monotonic())
        await ws.send("x" * 70_000)  # over many reads
        await ws.wait_closed()

    def on_message(client: WsClient, data: bytes, at: float) -> None:
        got.append((data, at, client.read_at))
        (received if len(got) == 2 else first).set()

    async with serve(handler, "127.0.0.1", 0, ssl=server_tls, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        tls = insecure_context() if secure else None
        client = await WsClient.connect(port, on_message, tls=tls)
        assert client.transport is not None
        clients.append(client.transport.sock)
        client.send_text(b"go")
        async with asyncio.timeout(5):
            await received.wait()
        client.close()
        async with asyncio.timeout(5):
            await client.closed
    assert [data for data, _, _ in got] == [b"first", b"x" * 70_000]
    (_, arrived, read), (_, last_arrived, last_read) = got
    assert arrived <= there[0]  # stamped when it came...
    assert there[0] + HELD_S <= read  # ...not when it was read
    assert second_from[0] < last_arrived <= last_read
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
