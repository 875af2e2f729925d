"""Waiting for the app to reach a state, with a deadline instead of fixed sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_for(
    pilot: Pilot[object], condition: Callable[[], object], within: float = 5.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {condition}")
        await pilot.pause(0.01)
