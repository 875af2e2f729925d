"""`TaskOwner`: holds a service's tasks, surfaces their errors, ends them within a bound."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from loudsync_tui.net.tasks import TaskOwner

OWNER_LOG = "loudsync_tui.net.tasks"


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the loop's exception handler hears (an exception nobody retrieved, say)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


async def _fail(text: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(text)


async def test_a_failed_task_is_logged_with_the_owner_name_and_retrieved(
    caplog: pytest.LogCaptureFixture, loop_errors: list[dict[str, Any]]
) -> None:
    owner = TaskOwner("test service")
    with caplog.at_level(logging.DEBUG, logger=OWNER_LOG):
        task = owner.spawn(_fail("boom"), name="doomed")
        del task  # only the owner holds it
        await owner.wait(1.0)
        gc.collect()  # an unretrieved exception is reported when its task is freed
        await asyncio.sleep(0)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "test service" in errors[0].getMessage()
    assert "doomed" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)
    assert loop_errors == []


async def test_expected_errors_and_cancellations_are_not_logged_as_errors(
    caplog: pytest.LogCaptureFixture, loop_errors: list[dict[str, Any]]
) -> None:
    owner = TaskOwner("sockets", expected=(ConnectionError,))

    async def reset() -> None:
        raise ConnectionResetError("peer went away")

    with caplog.at_level(logging.DEBUG, logger=OWNER_LOG):
        owner.spawn(reset())
        owner.spawn(asyncio.sleep(10))
        await asyncio.sleep(0.01)
        await owner.aclose(1.0)
        gc.collect()
        await asyncio.sleep(0)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("peer went away" in r.getMessage() for r in caplog.records)
    assert loop_errors == []


async def test_a_finished_task_is_forgotten() -> None:
    owner = TaskOwner("test service")
    task = owner.spawn(asyncio.sleep(0, result=7))
    assert len(owner) == 1
    assert await task == 7
    await asyncio.sleep(0)  # the done-callback runs on the next turn of the loop
    assert len(owner) == 0


async def test_aclose_cancels_and_awaits_what_is_left_within_its_bound() -> None:
    owner = TaskOwner("test service")
    sleeper = owner.spawn(asyncio.sleep(60))
    await asyncio.sleep(0)
    started = time.monotonic()
    await owner.aclose(1.0)
    assert sleeper.cancelled()
    assert len(owner) == 0
    assert time.monotonic() - started < 0.5


async def test_aclose_gives_up_on_a_task_that_ignores_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = TaskOwner("stubborn service")
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallowed: a bug the bound must survive

    task = owner.spawn(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=OWNER_LOG):
        await owner.aclose(0.2)
    elapsed = time.monotonic() - started
    assert 0.15 < elapsed < 1.5
    assert any("stubborn" in r.getMessage() for r in caplog.records)
    release.set()
    await task


async def test_aclose_from_one_of_its_own_tasks_does_not_cancel_that_task() -> None:
    owner = TaskOwner("test service")
    other = owner.spawn(asyncio.sleep(60))

    async def closing() -> str:
        await owner.aclose(1.0)
        return "closed"

    assert await owner.spawn(closing()) == "closed"
    assert other.cancelled()


async def test_spawn_after_aclose_is_refused_clearly() -> None:
    owner = TaskOwner("test service")
    await owner.aclose()
    assert owner.closed
    late = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="test service is closed"):
        owner.spawn(late, name="late")
    assert (
        inspect.getcoroutinestate(late) == "CORO_CLOSED"
    )  # closed, so never reported as "never awaited"
    await owner.aclose()  # again: harmless


async def test_cancel_and_wait_leave_the_owner_open_for_a_restart() -> None:
    owner = TaskOwner("test service")
    first = owner.spawn(asyncio.sleep(60))
    await asyncio.sleep(0)
    owner.cancel()
    assert await owner.wait(1.0)
    assert first.cancelled()
    assert not owner.closed
    assert await owner.spawn(asyncio.sleep(0, result="again")) == "again"


async def test_wait_is_bounded_and_says_whether_all_finished() -> None:
    owner = TaskOwner("test service")
    owner.spawn(asyncio.sleep(60))
    assert not await owner.wait(0.05)
    assert len(owner) == 1
    await owner.aclose(1.0)
