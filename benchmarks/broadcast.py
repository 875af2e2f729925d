"""What one fan-out costs the host itself, without the guests' side: milliseconds to hand
one MEMBER_JOINED to every connection, deflated per guest by `websockets.broadcast` as
small sessions' messages go, and framed once for all as the host sends one to a crowd
(`fanout.send_to_all`), and the first split into `websockets`' framing and deflate and
the writes to the transports (over wss, with the encryption).

    python -m benchmarks.broadcast            # 100 and 1,000 connections, ws and wss
    python -m benchmarks.broadcast --guests 2500 --transport wss

The fan-out figures of `python -m benchmarks` run from the JOIN leaving the prober to the
last guest reading MEMBER_JOINED, with the host and the load guests on the same cores.
This isolates the host's part: a `websockets` server configured as the host's (its
permessage-deflate settings, over TLS its connections with small buffers, sending as
`SessionServer` does) and the benchmarks' load clients, which only count what they
get. Each level: 30 broadcasts, each after every client has read the one before.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from rich.console import Console
from rich.table import Table
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.frames import Frame, Opcode

from benchmarks.loadgen import raise_fd_limit
from benchmarks.wsclient import WsClient, insecure_context
from loudsync_tui.net.compression import TextOnlyDeflateFactory
from loudsync_tui.net.fanout import send_to_all
from loudsync_tui.net.server import HostConnection
from loudsync_tui.security.certificate import HostCertificate, load_or_create

ROUNDS = 30
COLUMNS = ("broadcast", "framed once", "framing and deflate", "transport writes")


def member_joined(k: int) -> str:
    member = {"id": f"probe-{k:06d}", "name": f"probe {k}", "type": "terminal", "role": "guest"}
    return msgspec.json.encode(
        {"type": "MEMBER_JOINED", "timestamp": 1764086460000 + k, "member": member}
    ).decode()


async def level(guests: int, tls: HostCertificate | None) -> dict[str, float]:
    """Median ms per broadcast to `guests` connections, each way of COLUMNS."""
    conns: list[ServerConnection] = []
    opened = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        if len(conns) == guests:
            opened.set()
        await ws.wait_closed()

    heard = 0
    caught_up = asyncio.Event()

    def on_message(_client: WsClient, _data: bytes, _at: float) -> None:
        nonlocal heard
        heard += 1
        if heard == guests:
            caught_up.set()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        ping_interval=None,
        extensions=[TextOnlyDeflateFactory()],
        ssl=None if tls is None else tls.server_context(),
        create_connection=HostConnection,  # over TLS, the host's small buffers
    ) as server:
        port = server.sockets[0].getsockname()[1]
        client_tls = None if tls is None else insecure_context()
        clients = [await WsClient.connect(port, on_message, tls=client_tls) for _ in range(guests)]
        await asyncio.wait_for(opened.wait(), 60)
        gc.freeze()  # as the host does once started

        async def timed(send: Callable[[str], None], *, written: bool = True) -> float:
            nonlocal heard
            took = []
            for k in range(ROUNDS):
                message = member_joined(k)
                heard = 0
                caught_up.clear()
                started = time.perf_counter()
                send(message)
                took.append((time.perf_counter() - started) * 1000)
                if written:
                    await asyncio.wait_for(caught_up.wait(), 30)
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
            "transport writes": await timed(raw_writes),
        }
        for client in clients:
            client.close()
        gc.unfreeze()
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broadcast", description=__doc__)
    parser.add_argument("--guests", default="100,1000", help="comma-separated levels")
    parser.add_argument("--transport", choices=("both", "ws", "wss"), default="both")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.guests.split(",") if x.strip()]
    transports = ("ws", "wss") if args.transport == "both" else (args.transport,)
    raise_fd_limit()  # two sockets a guest, both ends in this process
    table = Table(title="One MEMBER_JOINED to every connection: the host's own time (median)")
    table.add_column("connections", justify="right")
    table.add_column("transport")
    for name in COLUMNS:
        table.add_column(f"{name}, ms", justify="right")
    with tempfile.TemporaryDirectory(prefix="loudsync-broadcast-") as tmp:
        cert = load_or_create(Path(tmp), "LOUDSYNC broadcast benchmark")
        for guests in levels:
            for transport in transports:
                r = asyncio.run(level(guests, cert if transport == "wss" else None))
                table.add_row(f"{guests:,}", transport, *(f"{r[k]:.1f}" for k in COLUMNS))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
