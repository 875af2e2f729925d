"""The host service's start-up: the session is ready as soon as it listens."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest

from loudsync_tui.net.discovery import Security
from loudsync_tui.net.host_service import HostService, HostStartError
from loudsync_tui.protocol import SessionInfo
from loudsync_tui.store import AppStore
from tests.integration.conftest import FAST_HOST
from tests.support.raw import RawGuest
from tests.support.waiting import eventually, within


class SlowAdvertiser:
    """Stands for mDNS probing, which takes about two seconds: done when the test says."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.stopped = False

    async def start(
        self, info: SessionInfo, port: int, addresses: Sequence[str], security: Security
    ) -> str:
        self.started.set()
        await self.release.wait()
        return "advertised"

    async def update(self, member_count: int, security: Security | None = None) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True


async def test_the_session_is_ready_and_joinable_while_it_is_still_being_announced() -> None:
    advertiser = SlowAdvertiser()
    service = HostService(replace(FAST_HOST, discovery=True), AppStore(), advertiser=advertiser)
    await within(service.start(), 2)  # before: start() waited for the announcement
    assert service.store.get().hosting is not None
    raw = await RawGuest.joined(service.port, "dev-early")
    await raw.close()
    assert advertiser.started.is_set()
    advertiser.release.set()
    await eventually(lambda: service._advertised)
    await service.aclose()
    assert advertiser.stopped  # a session that was announced says goodbye


async def test_stopping_during_the_announcement_cancels_it_cleanly() -> None:
    advertiser = SlowAdvertiser()
    service = HostService(replace(FAST_HOST, discovery=True), AppStore(), advertiser=advertiser)
    await service.start()
    await within(advertiser.started.wait())
    await within(service.aclose(), 3)
    assert not advertiser.stopped  # never announced: no goodbye to send


async def test_a_taken_port_is_said_once_in_words() -> None:
    first = HostService(FAST_HOST, AppStore())
    await first.start()
    taken = replace(FAST_HOST, port=first.port, port_tries=1)
    second = HostService(taken, AppStore())
    try:
        with pytest.raises(HostStartError) as failed:
            await second.start()
    finally:
        await first.aclose()
    text = str(failed.value)
    assert text == (
        f"Cannot listen on 127.0.0.1:{first.port}: port {first.port} on 127.0.0.1 is in use"
    )
    assert "Errno" not in text
