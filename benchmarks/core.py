"""The host core's own cost, without sockets: microseconds per JOIN and per PING.

    python -m benchmarks.core

What the network figures cannot separate: how much of a join is our session rules
(validation, effects, member bookkeeping) rather than `websockets` and the kernel.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from loudsync_tui.config import HostConfig
from loudsync_tui.core.clock import ManualClock
from loudsync_tui.core.host import HostSession
from loudsync_tui.protocol import PROTOCOL_VERSION, DeviceInfo, Join, Ping, encode

LEVELS = (10, 100, 1000)


def _session(members: int) -> tuple[HostSession, ManualClock]:
    clock = ManualClock()
    config = HostConfig(
        "bench",
        "host",
        "host-id",
        session_id="s",
        max_members=members + 10,
        rate_burst=10**9,
        allow_unproven=True,  # plain JOINs: the core's own cost, without Ed25519
    )
    host = HostSession(config, "s", clock)
    for i in range(members - 1):
        host.connected(i)
        host.received(i, _join(f"dev-{i}"))
    return host, clock


def _join(device_id: str) -> str:
    return encode(
        Join(
            timestamp=1,
            session_id="s",
            protocol_version=PROTOCOL_VERSION,
            device=DeviceInfo(device_id, device_id, "bench"),
        )
    )


def per_join_us(members: int, repeats: int = 200) -> float:
    """Mean time for one more guest's JOIN (and its LEAVE, to keep the size) at `members`."""
    host, _ = _session(members)
    frames = [_join(f"new-{i}") for i in range(repeats)]
    leave = '{"type":"LEAVE","timestamp":1}'
    started = time.perf_counter()
    for i, frame in enumerate(frames):
        conn = 10_000_000 + i
        host.connected(conn)
        host.received(conn, frame)
        host.received(conn, leave)
        host.disconnected(conn)
    return (time.perf_counter() - started) / repeats * 1e6


def per_ping_us(members: int, repeats: int = 2000) -> float:
    host, clock = _session(members)
    frame = encode(Ping(timestamp=1, latency=1.5))
    started = time.perf_counter()
    for i in range(repeats):
        clock.advance(0.001)
        host.received(i % (members - 1), frame)
    return (time.perf_counter() - started) / repeats * 1e6


def main() -> None:
    table = Table(title="Host core cost, no sockets (mean of many inputs)")
    table.add_column("members", justify="right")
    table.add_column("JOIN + LEAVE, µs", justify="right")
    table.add_column("PING, µs", justify="right")
    for members in LEVELS:
        table.add_row(str(members), f"{per_join_us(members):.0f}", f"{per_ping_us(members):.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
