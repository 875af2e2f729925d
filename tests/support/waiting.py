"""Wait for a condition on the store, or for an awaitable, with a timeout; never a fixed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from loudsync_tui.store import AppState, AppStore

T = TypeVar("T")

TIMEOUT = 5.0


async def until(
    store: AppStore, predicate: Callable[[AppState], bool], timeout: float = TIMEOUT
) -> AppState:
    """Return the first state for which `predicate` holds; fail after `timeout` seconds."""
    if predicate(store.get()):
        return store.get()
    done = asyncio.Event()

    def check(new: AppState, old: AppState) -> None:
        if predicate(new):
            done.set()

    unsubscribe = store.subscribe(check)
    try:
        async with asyncio.timeout(timeout):
            await done.wait()
    except TimeoutError:
        raise AssertionError(f"condition not met within {timeout}s; state: {store.get()}") from None
    finally:
        unsubscribe()
    return store.get()


async def within(awaitable: Awaitable[T], timeout: float = TIMEOUT) -> T:
    async with asyncio.timeout(timeout):
        return await awaitable


async def eventually(
    predicate: Callable[[], bool], timeout: float = TIMEOUT, *, every: float = 0.01
) -> None:
    """Poll `predicate` (state outside a store: sockets, tasks, fds) until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)
