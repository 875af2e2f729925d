"""What a TLS handshake costs on loopback, with the host's certificate and settings, with
and without TLS 1.3 session tickets (OpenSSL sends two by default; guests never resume).

    python -m benchmarks.tls_handshake [--count N]

One process plays both ends, one connection at a time, so the CPU figure is both ends'
work per handshake; "connect" is the client's time from connect to a finished handshake.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from loudsync_tui.security.certificate import client_context, load_or_create


async def handshakes(tickets: int, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="loudsync-tls-") as tmp:
        server_ctx = load_or_create(Path(tmp)).server_context()
        server_ctx.num_tickets = tickets
        client_ctx = client_context()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        times = []
        cpu = time.process_time()
        for _ in range(count):
            began = time.perf_counter()
            _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx)
            times.append((time.perf_counter() - began) * 1e6)
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        cpu = time.process_time() - cpu
        server.close()
        await server.wait_closed()
    times.sort()
    return {
        "cpu_us": cpu / count * 1e6,
        "p50_us": times[len(times) // 2],
        "p99_us": times[min(len(times) - 1, int(len(times) * 0.99))],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tls_handshake", description=__doc__)
    parser.add_argument("--count", type=int, default=300, help="handshakes a setting")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be positive")
    for tickets in (2, 0, 2, 0):  # alternated, so both see the same machine
        r = asyncio.run(handshakes(tickets, args.count))
        print(
            f"session tickets {tickets}: CPU per handshake (both ends) {r['cpu_us']:,.0f} µs, "
            f"connect p50 {r['p50_us']:,.0f} µs, p99 {r['p99_us']:,.0f} µs",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
