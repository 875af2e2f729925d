"""Real hosts and guests on 127.0.0.1 with ephemeral ports and small timings."""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from typing import Any

import pytest

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppStore
from tests.support.jack import jack_rig
from tests.support.pulse import pulse_rig

__all__ = ["jack_rig", "pulse_rig"]  # the measuring rigs' fixtures, for the tests here

FAST_HOST = HostConfig(
    session_name="Test session",
    host_name="Grace",
    host_id="host-grace",
    session_id="sess1",
    port=0,
    bind="127.0.0.1",
    max_members=10,
    heartbeat_interval=0.1,
    heartbeat_timeout=0.6,
    join_timeout=0.5,
    discovery=False,
    allow_unproven=True,
)
"""Most tests here are about other rules and join raw guests with readable ids
(`dev-a`), which cannot be proven; tests of identity proofs turn this off."""


@pytest.fixture(autouse=True)
async def no_unhandled_loop_errors() -> AsyncIterator[None]:
    """Fail a test whose tasks raised where nobody looked (issue: no exception left
    unretrieved): the loop reports those to its exception handler."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    gc.collect()  # "exception was never retrieved" is reported when the task is freed
    await asyncio.sleep(0)
    loop.set_exception_handler(previous)
    assert not errors, [str(e.get("exception") or e.get("message")) for e in errors]


HostFactory = Callable[..., Coroutine[Any, Any, HostService]]
GuestFactory = Callable[..., GuestService]


@pytest.fixture
async def make_host() -> AsyncIterator[HostFactory]:
    hosts: list[HostService] = []

    async def make(**changes: Any) -> HostService:
        service = HostService(replace(FAST_HOST, **changes), AppStore())
        await service.start()
        hosts.append(service)
        return service

    yield make
    for service in hosts:
        await service.aclose()


@pytest.fixture
async def make_guest() -> AsyncIterator[GuestFactory]:
    guests: list[GuestService] = []
    ids = itertools.count(1)

    def make(address: str, *, key: DeviceKey | None = None, **changes: Any) -> GuestService:
        """A guest `dev-n` joining unproven; with `key`, proving the id derived from it."""
        n = next(ids)
        config = GuestConfig(
            address=address,
            name=changes.pop("name", f"Guest {n}"),
            device_id=changes.pop("device_id", key.device_id if key else f"dev-{n}"),
            device_key=None if key is None else key.private,
            connect_timeout=2.0,
            reconnect_attempts=3,
            reconnect_delay=0.05,
        )
        service = GuestService(replace(config, **changes), AppStore())
        service.start()
        guests.append(service)
        return service

    yield make
    for service in guests:
        await service.aclose()
