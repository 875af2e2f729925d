"""When each message came off the socket: the receive stamps of the session clock.

A message reaches `async for data in ws` at least one event-loop turn after its bytes
were read, and more on a host busy with a hundred guests. That lag lands in one leg of a
clock exchange only (the host's read of a PING, or the guest's read of a PONG), so it
biases the offset by half of it. Stamping where `websockets` parses the bytes, in the
same call that read them, leaves it out.

Measured with `python -m benchmarks.clock --only crowd` (100 guests on 2 cores), the
raw exchanges logged: the quickest PING took 133-185 µs to reach the worst guests' host
when stamped by the reader, 57-79 µs stamped here, and the guests' median error over
all 100 went from 19 to 12 µs with the estimator of the time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode

from loudsync_tui.core.clock import Clock, SystemClock

_LAST_FRAMES = frozenset({Opcode.TEXT, Opcode.BINARY, Opcode.CONT})
"""A data frame with `fin` set ends a message: a whole one, or the last fragment of one."""


monotonic_us = SystemClock().monotonic_us
"""The clock of the stamps."""


class StampedConnection(Connection):
    """A connection that stamps every message it receives with the local monotonic µs of
    the read that completed it; the reader takes the stamps in order, one a message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arrivals: deque[int] = deque()
        self._read_us = 0

    def data_received(self, data: bytes) -> None:
        self._read_us = monotonic_us()
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.fin and event.opcode in _LAST_FRAMES:
            self._arrivals.append(self._read_us)
        super().process_event(event)

    def arrival_us(self) -> int:
        """The stamp of the oldest message not yet asked about: call it once for each
        message `recv` or `async for` returns, in order. (Now, if none is left.)"""
        return self._arrivals.popleft() if self._arrivals else monotonic_us()


class StampedServerConnection(StampedConnection, ServerConnection):
    """A guest's connection, on the host: a PING's t2 is its arrival."""


class StampedClientConnection(StampedConnection, ClientConnection):
    """The guest's connection to the host: a PONG's t4 is its arrival."""


def stamper(ws: Connection, clock: Clock) -> Callable[[], int]:
    """What gives each message `ws` delivers, in order, its arrival on `clock`: the
    connection's stamps when it takes them on that clock (the system's), else the time
    the reader gets the message (a simulated clock)."""
    if isinstance(clock, SystemClock) and isinstance(ws, StampedConnection):
        return ws.arrival_us
    return clock.monotonic_us
