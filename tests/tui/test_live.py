"""The app against real hosts and guests on 127.0.0.1 (ephemeral ports, no mDNS).

One side of each test is the app under Pilot; the other is the bare service with its
own store, exactly as the headless modes run it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from textual.widgets import Static

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppStore, ConnectionState, DiscoveredSession
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.confirm import ConfirmDialog
from loudsync_tui.tui.dialogs.kick import KickDialog
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.services import Services, default_services
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.session_table import SessionTable
from tests.support.proxy import LinkProxy
from tests.support.raw import RawGuest
from tests.tui.helpers import wait_for

FAST = {"heartbeat_interval": 0.1, "heartbeat_timeout": 2.0}


def host_config(name: str = "Friday") -> HostConfig:
    return HostConfig(name, "Grace", "dev-host", port=0, bind="127.0.0.1", discovery=False, **FAST)


ADA = DeviceKey.generate()
ADA_ID = ADA.device_id
"""Ada proves her id, as every guest built from an identity does."""


def guest_config(address: str = "", device: DeviceKey = ADA) -> GuestConfig:
    return GuestConfig(
        address,
        "Ada",
        device.device_id,
        reconnect_attempts=1,
        reconnect_delay=0.1,
        device_key=device.private,
    )


def live_services() -> Services:
    return replace(default_services(), browser=None)


@pytest.fixture
async def bare_host() -> AsyncIterator[HostService]:
    host = HostService(host_config(), AppStore())
    await host.start()
    yield host
    await host.aclose()


def guest_app() -> LoudsyncApp:
    settings = replace(AppSettings.for_device("Ada", ADA_ID), guest=guest_config())
    return LoudsyncApp(store=AppStore(), settings=settings, services=live_services())


def host_app() -> LoudsyncApp:
    settings = replace(
        AppSettings.for_device("Grace", "dev-host"), host=host_config(), session_name="Friday"
    )
    settings = replace(settings, start="host")
    return LoudsyncApp(store=AppStore(), settings=settings, services=live_services())


def seen(host: HostService) -> DiscoveredSession:
    return DiscoveredSession(
        key="friday",
        session_id=host.session_id,
        name="Friday",
        host_name="Grace",
        addresses=("127.0.0.1",),
        port=host.port,
        members=1,
        max_members=10,
        protocol_version=1,
        joinable=True,
    )


async def join_from_browse(app: LoudsyncApp, pilot: object, host: HostService) -> None:
    app.store.session_seen(seen(host))
    await wait_for(pilot, lambda: app.screen.query_one(SessionTable).row_count == 1)  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_for(  # type: ignore[arg-type]
        pilot,
        lambda: len(host.store.get().hosting.members) == 2,  # type: ignore[union-attr]
    )
    assert isinstance(app.screen, GuestScreen)


async def test_enter_joins_and_kick_sends_the_guest_back_to_browse(
    bare_host: HostService,
) -> None:
    app = guest_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await join_from_browse(app, pilot, bare_host)
        await wait_for(pilot, lambda: app.store.get().guest.session_name == "Friday")  # type: ignore[union-attr]
        bare_host.kick(ADA_ID)
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert any(n.title == "Kicked" for n in app._notifications)
        # A rejoin is refused, and that is a notice on Browse too.
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.title == "Could not join" for n in app._notifications))
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))


async def test_host_closing_sends_the_guest_back_to_browse(bare_host: HostService) -> None:
    app = guest_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await join_from_browse(app, pilot, bare_host)
        await bare_host.aclose()
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert any(n.title == "Session closed" for n in app._notifications)


async def guest_joins(app: LoudsyncApp, pilot: object) -> tuple[GuestService, MemberTable]:
    """Ada, a real guest, joins the session the app hosts: once both rows show."""
    await wait_for(pilot, lambda: app.store.get().hosting is not None)  # type: ignore[arg-type]
    hosting = app.store.get().hosting
    assert hosting is not None
    guest = GuestService(guest_config(hosting.address), AppStore())
    guest.start()
    table = app.screen.query_one(MemberTable)
    await wait_for(pilot, lambda: table.row_count == 2)  # type: ignore[arg-type]
    return guest, table


async def test_host_table_shows_the_guest_with_latency_and_k_y_kicks() -> None:
    app = host_app()
    async with app.run_test(size=(80, 24)) as pilot:
        guest, table = await guest_joins(app, pilot)
        await wait_for(pilot, lambda: str(table.get_cell(ADA_ID, "latency")) != "—")
        await pilot.press("down", "k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        await pilot.press("y")
        end = await asyncio.wait_for(guest.wait_ended(), 5)
        assert end.code == "kicked"
        await wait_for(pilot, lambda: table.row_count == 1)
        await guest.aclose()


async def test_s_on_the_host_sends_every_guest_home() -> None:
    app = host_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.get().hosting is not None)
        hosting = app.store.get().hosting
        assert hosting is not None
        guests = [
            GuestService(guest_config(hosting.address, DeviceKey.generate()), AppStore())
            for _ in range(2)
        ]
        for guest in guests:
            guest.start()
        table = app.screen.query_one(MemberTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        ends = await asyncio.wait_for(asyncio.gather(*(g.wait_ended() for g in guests)), 5)
        assert [e.code for e in ends] == ["closed", "closed"]
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert not isinstance(app.screen, HostScreen)


async def test_guest_shows_reconnecting_when_the_host_vanishes_and_recovers(
    bare_host: HostService,
) -> None:
    proxy = await LinkProxy(bare_host.port).start()
    settings = replace(
        AppSettings.for_device("Ada", ADA_ID),
        guest=replace(guest_config(), reconnect_attempts=5, reconnect_delay=0.4),
    )
    app = LoudsyncApp(store=AppStore(), settings=settings, services=live_services())
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            app.store.session_seen(replace(seen(bare_host), port=proxy.port))
            await wait_for(pilot, lambda: app.screen.query_one(SessionTable).row_count == 1)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
            link = app.screen.query_one("#guest-link", Static)
            await wait_for(pilot, lambda: "connected" in str(link.render()))
            proxy.refusing = True
            proxy.cut()
            await wait_for(pilot, lambda: "reconnecting, attempt" in str(link.render()))
            proxy.refusing = False
            await wait_for(
                pilot,
                lambda: (
                    app.store.get().guest is not None
                    and app.store.get().guest.connection is ConnectionState.CONNECTED
                ),  # type: ignore[union-attr]
            )
            assert isinstance(app.screen, GuestScreen)
            hosting = bare_host.store.get().hosting
            assert hosting is not None
            assert hosting.members[ADA_ID].status == "connected"
    finally:
        await proxy.close()


async def test_the_app_logs_each_host_event_once(caplog: pytest.LogCaptureFixture) -> None:
    """One path from the host core to the log file: through the store, mirrored by the app."""
    caplog.set_level(logging.INFO)
    app = host_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.host_service is not None and app.store.get().hosting)
        hosting = app.store.get().hosting
        assert hosting is not None
        raw = await RawGuest.connect(hosting.port)
        await raw.join(ADA_ID, "Ada", session_id="no-such-session", key=ADA)
        assert await raw.closed() == 4001
        await wait_for(pilot, lambda: any("Refused a join" in e.text for e in app.store.get().log))
        await pilot.pause()
    refused = [r for r in caplog.records if "Refused a join" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in refused]
