"""The app's Browse screen over real mDNS on 127.0.0.1: a running host is listed and joined."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from loudsync_tui.config import HostConfig
from loudsync_tui.net.host_service import HostService
from loudsync_tui.store import AppStore, ConnectionState
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.services import default_services
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.session_table import SessionTable
from tests.tui.helpers import wait_for

LOOPBACK = ("127.0.0.1",)


async def test_browse_lists_a_running_host_and_enter_joins_it(tmp_path: Path) -> None:
    host = HostService(
        HostConfig(
            "Browse me",
            "Grace",
            "dev-browse-host",
            port=0,
            bind="127.0.0.1",
            interfaces=LOOPBACK,
            heartbeat_interval=0.2,
            heartbeat_timeout=2.0,
        ),
        AppStore(),
    )
    await host.start()
    try:
        base = AppSettings.for_device("Ada", "dev-browse-guest")
        settings = replace(
            base,
            interfaces=LOOPBACK,
            guest=replace(base.guest, trust_dir=str(tmp_path)),
        )
        app = LoudsyncApp(store=AppStore(), settings=settings, services=default_services())
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.screen.query_one(SessionTable)

            def listed() -> bool:
                sessions = app.store.get().discovery.sessions.values()
                return any(s.session_id == host.session_id for s in sessions)

            await wait_for(pilot, listed, within=8)
            await wait_for(pilot, lambda: table.row_count >= 1)
            key = next(
                k
                for k, s in app.store.get().discovery.sessions.items()
                if s.session_id == host.session_id
            )
            table.move_cursor(row=table.get_row_index(key))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
            await wait_for(
                pilot,
                lambda: (
                    app.store.get().guest is not None
                    and app.store.get().guest.connection is ConnectionState.CONNECTED
                ),  # type: ignore[union-attr]
            )
            hosting = host.store.get().hosting
            assert hosting is not None
            assert "dev-browse-guest" in hosting.members
    finally:
        await host.aclose()
