"""The clock the cores read: a monotonic one for deadlines, a wall one for timestamps.

Passing it in (instead of calling `time` inside the rules) is what lets every timing
rule be tested in microseconds with a fake clock.
"""

from __future__ import annotations

import time
from typing import Protocol

from loudsync_tui.protocol import now_ms


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds, for deadlines; never goes back."""
        ...

    def wall_ms(self) -> int:
        """Milliseconds since the Unix epoch, for message timestamps."""
        ...

    def monotonic_us(self) -> int:
        """The monotonic clock in integer microseconds, for the session clock."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ms(self) -> int:
        return now_ms()

    def monotonic_us(self) -> int:
        return time.monotonic_ns() // 1000


class ManualClock:
    """A clock that moves only when told to; for tests and simulations."""

    def __init__(self, start: float = 1000.0, wall_start_ms: int = 1_764_086_400_000) -> None:
        self.now = start
        self._wall_offset_ms = wall_start_ms - int(start * 1000)

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return self._wall_offset_ms + int(self.now * 1000)

    def monotonic_us(self) -> int:
        return round(self.now * 1_000_000)

    def advance(self, seconds: float) -> None:
        self.now += seconds
