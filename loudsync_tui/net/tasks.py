"""One owner for a service's background tasks: `TaskOwner`.

Every task a service starts goes through its owner's `spawn`, which keeps a strong
reference until the task is done (asyncio itself keeps only a weak one: a task nobody
holds can be collected mid-run), retrieves its outcome when it ends and surfaces a
failure as a logged error naming the owner, with the traceback. A cancellation is not a
failure, and neither is an exception the owner was told to expect (a peer closing a
socket, say): those are logged at debug level. Stopping the service cancels what is left
and awaits it, within a bound (`aclose`); after that the owner refuses new work.

Why not `asyncio.TaskGroup`: a group cancels every sibling as soon as one task fails and
then raises from its `async with` block, so it has to be entered for the service's whole
life, in one coroutine the service does not have (its tasks are started from callbacks:
a socket handler, a zeroconf listener, a store effect). For these services one failed
task (a closing socket, a probe) must not take the others down; the error is to be seen,
not to end the session. A TaskGroup fits one coroutine that waits for a fixed set of
children; this helper fits a long-lived object that starts tasks as things happen.

The TUI's own work runs as Textual workers (`LoudsyncApp._spawn`): Textual owns those.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

T = TypeVar("T")

CLOSE_TIMEOUT: Final = 3.0
"""Seconds `aclose` waits for cancelled tasks to end by default."""

log = logging.getLogger(__name__)


class TaskOwner:
    """Starts, holds and ends the background tasks of one service (named `name` in logs).

    `expected` lists exceptions a task may end with in normal use (logged at debug level,
    not as errors). The owner can be cleared and reused (`cancel`, `wait`) by a service
    that restarts; `aclose` is final.
    """

    def __init__(self, name: str, *, expected: tuple[type[BaseException], ...] = ()) -> None:
        self.name = name
        self._expected = expected
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        """Tasks started and not yet finished."""
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        """Whether `aclose` was called: `spawn` then refuses."""
        return self._closed

    def spawn(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Run `coro` as a task held until it ends; raises RuntimeError once closed."""
        if self._closed:
            coro.close()  # never started: no "was never awaited" warning
            raise RuntimeError(f"{self.name} is closed: cannot start {name or 'a task'}")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def cancel(self) -> None:
        """Cancel every task held (but the calling one); the owner stays open."""
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()

    async def wait(self, timeout: float) -> bool:  # noqa: ASYNC109 - a bound, not a deadline
        """Let the tasks held (but the calling one) finish, for at most `timeout` seconds;
        True if none is left running."""
        current = asyncio.current_task()
        pending = {task for task in self._tasks if task is not current}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout)
        return not pending

    async def aclose(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109
        """Refuse new tasks, cancel the ones left (but the calling one) and await them, for
        at most `timeout` seconds. Calling it again is harmless."""
        self._closed = True
        self.cancel()
        if not await self.wait(timeout):
            current = asyncio.current_task()
            left = sorted(t.get_name() for t in self._tasks if t is not current)
            log.warning(
                "%s: tasks still running %.1f s after cancelling: %s", self.name, timeout, left
            )

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved: asyncio never reports it as unseen
        if exc is None:
            return
        if isinstance(exc, self._expected):
            log.debug("%s: task %s ended: %r", self.name, task.get_name(), exc)
        else:
            log.error("%s: task %s failed", self.name, task.get_name(), exc_info=exc)
