"""Secure sessions end to end: the app against a real TLS host on 127.0.0.1 (and the app
as a TLS host against a real guest), with fingerprints pinned in a temporary directory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Digits, Input, Static

from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService
from loudsync_tui.security.certificate import comparison_code, short
from loudsync_tui.security.trust import KnownHosts
from loudsync_tui.store import AppStore, ConnectionState
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.bans import BanTable
from loudsync_tui.tui.dialogs.kick import KickDialog
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.session_table import SessionTable
from tests.tui.helpers import wait_for
from tests.tui.test_live import ADA_ID, guest_config, host_config, live_services, seen

PIN = "2468"


@pytest.fixture
async def tls_host(tmp_path: Path) -> AsyncIterator[HostService]:
    config = replace(host_config(), tls=True, key_dir=str(tmp_path / "host"), pin=PIN)
    host = HostService(config, AppStore())
    await host.start()
    yield host
    await host.aclose()


def guest_app(trust_dir: Path) -> LoudsyncApp:
    settings = replace(
        AppSettings.for_device("Ada", ADA_ID),
        guest=replace(guest_config(), trust_dir=str(trust_dir)),
    )
    return LoudsyncApp(store=AppStore(), settings=settings, services=live_services())


def connected(app: LoudsyncApp) -> bool:
    guest = app.store.get().guest
    return guest is not None and guest.connection is ConnectionState.CONNECTED


async def test_join_by_address_shows_the_fingerprint_and_yes_pins_it(
    tls_host: HostService, tmp_path: Path
) -> None:
    app = guest_app(tmp_path / "guest")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: app.screen.query("TextPrompt Input"))
        app.screen.query_one(Input).value = f"127.0.0.1:{tls_host.port}"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("TrustDialog #trust-question"))
        fingerprint = tls_host.fingerprint
        assert fingerprint is not None
        assert short(fingerprint) in str(app.screen.query_one("#trust-question", Static).render())
        await pilot.press("y")
        # The host wants a PIN too: asked next, and the trust answer is kept for the retry.
        await wait_for(pilot, lambda: app.screen.query("TextPrompt Input"))
        app.screen.query_one(Input).value = PIN
        await pilot.press("enter")
        await wait_for(pilot, lambda: connected(app))
        security = app.screen.query_one("#guest-security", Static)
        await wait_for(pilot, lambda: short(fingerprint) in str(security.render()))
        assert KnownHosts(tmp_path / "guest").get("dev-host") == fingerprint


async def test_pin_session_from_browse_asks_trust_first_then_the_pin_and_joins(
    tls_host: HostService, tmp_path: Path
) -> None:
    app = guest_app(tmp_path / "guest")
    async with app.run_test(size=(80, 24)) as pilot:
        fingerprint = tls_host.fingerprint
        assert fingerprint is not None
        advertised = replace(
            seen(tls_host), encrypted=True, fingerprint=fingerprint, pin_required=True
        )
        app.store.session_seen(advertised)
        await wait_for(pilot, lambda: app.screen.query_one(SessionTable).row_count == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query("TextPrompt Input"))
        app.screen.query_one(Input).value = "1357"
        await pilot.press("enter")
        # First meeting: the advertised fp matches, but that proves nothing. The dialog
        # shows the code large and names the host by its names; the PIN is not sent yet.
        await wait_for(pilot, lambda: app.screen.query("TrustDialog #trust-question"))
        assert "danger" not in app.screen.query_one(".dialog").classes
        assert app.screen.query_one("#trust-code", Digits).value == comparison_code(fingerprint)
        question = str(app.screen.query_one("#trust-question", Static).render())
        assert "Grace's session “Friday”" in question
        assert "dev-host" not in question
        assert len(tls_host.core._pin_guard) == 0  # no JOIN, so no PIN, reached the host
        await pilot.press("y")  # then the PIN goes, and is wrong: refused, asked again
        await wait_for(
            pilot,
            lambda: "not accepted" in str(app.screen.query_one("#prompt-hint", Static).render()),
        )
        app.screen.query_one(Input).value = PIN
        await pilot.press("enter")
        await wait_for(pilot, lambda: connected(app))
        hosting = tls_host.store.get().hosting
        assert hosting is not None
        assert ADA_ID in hosting.members


async def test_changed_fingerprint_is_refused_by_default(
    tls_host: HostService, tmp_path: Path
) -> None:
    KnownHosts(tmp_path / "guest").pin("dev-host", "00" * 32)
    app = guest_app(tmp_path / "guest")
    async with app.run_test(size=(80, 24)) as pilot:
        app.join(f"127.0.0.1:{tls_host.port}", pin=PIN)
        await wait_for(pilot, lambda: app.screen.query("TrustDialog #trust-question"))
        assert "danger" in app.screen.query_one(".dialog").classes
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert KnownHosts(tmp_path / "guest").get("dev-host") == "00" * 32
        assert ADA_ID not in tls_host.store.get().hosting.members  # type: ignore[union-attr]


async def test_kick_with_address_ban_then_b_lists_and_lifts(tmp_path: Path) -> None:
    settings = replace(
        AppSettings.for_device("Grace", "dev-host"),
        host=replace(host_config(), tls=True, key_dir=str(tmp_path)),
        session_name="Friday",
        start="host",
    )
    app = LoudsyncApp(store=AppStore(), settings=settings, services=live_services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.store.get().hosting is not None)
        hosting = app.store.get().hosting
        assert hosting is not None
        assert hosting.fingerprint is not None
        shown = str(app.screen.query_one("#host-security", Static).render())
        assert short(hosting.fingerprint) in shown
        config = replace(guest_config(hosting.address), expected_fingerprint=hosting.fingerprint)
        guest = GuestService(config, AppStore())
        guest.start()
        table = app.screen.query_one(MemberTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("down", "k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        await pilot.press("a")
        assert (await asyncio.wait_for(guest.wait_ended(), 5)).code == "kicked"
        await guest.aclose()
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        await pilot.press("b")
        await wait_for(pilot, lambda: app.screen.query("BansDialog BanTable"))
        bans = app.screen.query_one(BanTable)
        await wait_for(pilot, lambda: bans.row_count == 2)
        assert {k.value for k in bans.rows} == {ADA_ID, "127.0.0.1"}
        await pilot.press("l")
        await wait_for(pilot, lambda: bans.row_count == 1)
        await pilot.press("l")
        await wait_for(pilot, lambda: app.screen.query_one("#bans-empty").display)
        hosting = app.store.get().hosting
        assert hosting is not None
        assert not hosting.banned
        assert not hosting.banned_addresses
