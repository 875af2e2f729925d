"""A small reactive store in the spirit of Zustand: one immutable state, selector subscriptions.

Writers call `set()`; readers `subscribe()` to a slice. Notifications are coalesced:
every `set()` made within one turn of the asyncio loop reaches each subscriber at most
once, with the final value of its slice, so a burst of 1,000 updates costs one redraw.
Without a running loop (plain scripts, sync tests) subscribers are notified at once.
"""

from __future__ import annotations

import asyncio
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

S = TypeVar("S")
T = TypeVar("T")

Listener = Callable[[T, T], None]
"""Called as `listener(new_slice, old_slice)` when the selected slice changed."""

Unsubscribe = Callable[[], None]

log = logging.getLogger(__name__)


def _identity(state: Any) -> Any:
    return state


@dataclass(eq=False)
class _Subscription(Generic[S, T]):
    listener: Listener[T]
    selector: Callable[[S], T]
    equals: Callable[[T, T], bool]
    last: T
    active: bool = field(default=True)


class Store(Generic[S]):
    """Holds the current state snapshot and tells subscribers when their slice changes."""

    def __init__(
        self,
        initial: S,
        *,
        on_listener_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._state = initial
        self._subs: list[_Subscription[S, Any]] = []
        self._flush_scheduled = False
        self._on_listener_error = on_listener_error or _log_listener_error
        self.notifications = 0
        """How many listener calls were made; lets tests and benchmarks see coalescing."""

    def get(self) -> S:
        return self._state

    def set(self, update: S | Callable[[S], S]) -> None:
        """Replace the state with `update`, or with `update(current)` if it is callable."""
        if callable(update):
            new_state: S = update(self._state)
        else:
            new_state = update
        if new_state is self._state:
            return
        self._state = new_state
        self._schedule_flush()

    def subscribe(
        self,
        listener: Listener[T],
        selector: Callable[[S], T] = _identity,
        equals: Callable[[T, T], bool] = operator.eq,
    ) -> Unsubscribe:
        """Call `listener(new, old)` whenever `selector(state)` changes by `equals`.

        Listeners run in subscription order. Returns a function that unsubscribes.
        """
        sub: _Subscription[S, T] = _Subscription(listener, selector, equals, selector(self._state))
        self._subs.append(sub)

        def unsubscribe() -> None:
            if sub.active:
                sub.active = False
                self._subs.remove(sub)

        return unsubscribe

    def flush(self) -> None:
        """Notify subscribers of the current state now (normally done once per loop turn)."""
        self._flush_scheduled = False
        state = self._state
        for sub in list(self._subs):
            if not sub.active:
                continue
            try:
                selected = sub.selector(state)
                if sub.equals(selected, sub.last):
                    continue
                previous, sub.last = sub.last, selected
                self.notifications += 1
                sub.listener(selected, previous)
            except Exception as exc:
                self._on_listener_error(exc)

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)


def _log_listener_error(exc: BaseException) -> None:
    log.error("store listener failed", exc_info=exc)
