"""What one fan-out costs the host itself, without the guests' side: milliseconds to hand
one MEMBER_JOINED to every connection, deflated per guest by `websockets.broadcast` as
small sessions' messages go, and framed once for all as the host sends one to a crowd
(`fanout.send_to_all`), and the first split into `websockets`' framing and deflate and
the socket writes.

    python -m benchmarks.broadcast            # 100 and 1,000 connections, plain ws
    python -m benchmarks.broadcast --guests 2500

The fan-out figures of `python -m benchmarks` run from the JOIN leaving the prober to the
last guest reading MEMBER_JOINED, with the host and the load guests on the same cores.
This isolates the host's part: a `websockets` server configured as the host's (its
permessage-deflate settings, sending as `SessionServer` does) and raw clients
that only drain their sockets. Each level: 30 broadcasts, each after every client has
read the one before.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable

import msgspec
from rich.console import Console
from rich.table import Table
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.frames import Frame, Opcode

from benchmarks.loadgen import raise_fd_limit
from loudsync_tui.net.compression import TextOnlyDeflateFactory
from loudsync_tui.net.fanout import send_to_all

ROUNDS = 30
COLUMNS = ("broadcast", "framed once", "framing and deflate", "socket writes")
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)


def member_joined(k: int) -> str:
    member = {"id": f"probe-{k:06d}", "name": f"probe {k}", "type": "terminal", "role": "guest"}
    return msgspec.json.encode(
        {"type": "MEMBER_JOINED", "timestamp": 1764086460000 + k, "member": member}
    ).decode()


async def level(guests: int) -> dict[str, float]:
    """Median ms per broadcast to `guests` connections, each way of COLUMNS."""
    conns: list[ServerConnection] = []
    opened = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        if len(conns) == guests:
            opened.set()
        await ws.wait_closed()

    async with serve(
        handler, "127.0.0.1", 0, ping_interval=None, extensions=[TextOnlyDeflateFactory()]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        clients = []
        for _ in range(guests):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(UPGRADE)
            await reader.readuntil(b"\r\n\r\n")
            clients.append((reader, writer))
        await asyncio.wait_for(opened.wait(), 60)
        gc.freeze()  # as the host does once started

        async def drained() -> None:
            for reader, _ in clients:
                await reader.read(1 << 16)

        async def timed(send: Callable[[str], None], *, written: bool = True) -> float:
            took = []
            for k in range(ROUNDS):
                message = member_joined(k)
                started = time.perf_counter()
                send(message)
                took.append((time.perf_counter() - started) * 1000)
                if written:
                    await drained()
            return statistics.median(took)

        def frames_only(message: str) -> None:
            for ws in conns:
                ws.protocol.send_text(message.encode())
                ws.protocol.data_to_send()  # framed and deflated, never written

        def raw_writes(message: str) -> None:
            data = Frame(Opcode.TEXT, message.encode()).serialize(mask=False)
            for ws in conns:
                ws.transport.write(data)  # one unmasked, uncompressed frame for all

        result = {
            "broadcast": await timed(lambda m: broadcast(conns, m)),
            "framed once": await timed(lambda m: send_to_all(conns, m.encode(), text=True)),
            "framing and deflate": await timed(frames_only, written=False),
            "socket writes": await timed(raw_writes),
        }
        for _, writer in clients:
            writer.close()
        gc.unfreeze()
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broadcast", description=__doc__)
    parser.add_argument("--guests", default="100,1000", help="comma-separated levels")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.guests.split(",") if x.strip()]
    raise_fd_limit()  # two sockets a guest, both ends in this process
    table = Table(title="One MEMBER_JOINED to every connection: the host's own time (median)")
    table.add_column("connections", justify="right")
    for name in COLUMNS:
        table.add_column(f"{name}, ms", justify="right")
    for guests in levels:
        r = asyncio.run(level(guests))
        table.add_row(f"{guests:,}", *(f"{r[k]:.1f}" for k in COLUMNS))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
