"""Guest, driven through the store and a fake service: link state, leaving, being sent home."""

from __future__ import annotations

import asyncio

from loudsync_tui.store import AppStore, ConnectionState
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.widgets.member_table import MemberTable
from tests.tui.fakes import FakeGuest, FakeServices, member
from tests.tui.helpers import wait_for


async def join(app: LoudsyncApp, pilot: object, fakes: FakeServices) -> FakeGuest:
    app.join("127.0.0.1:8080")
    await wait_for(pilot, lambda: app.screen.query(MemberTable))  # type: ignore[arg-type]
    assert isinstance(app.screen, GuestScreen)
    guest = fakes.guests[0]
    guest.store.guest_welcomed(
        client_id="dev-grace",
        session_id="k3v9q2",
        session_name="Friday listening",
        host_name="Ada",
        max_members=10,
    )
    guest.store.guest_members_set([member(0, host=True), member(1)])
    return guest


def link_text(app: LoudsyncApp) -> str:
    return str(app.screen.query_one("#guest-link").render())


def footer_text(app: LoudsyncApp) -> str:
    """The key descriptions the Footer shows now."""
    return " ".join(str(key.render()) for key in app.screen.query("FooterKey"))


async def test_guest_shows_session_members_and_latency(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await join(app, pilot, fakes)
        table = app.screen.query_one(MemberTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        store.guest_latency(4.5)
        await wait_for(pilot, lambda: "4.5 ms" in link_text(app))
        assert "connected" in link_text(app)
        assert "Friday listening" in str(app.screen.query_one("#guest-info").render())


async def test_reconnecting_shows_attempt_and_countdown_then_retry(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        guest = await join(app, pilot, fakes)
        now = asyncio.get_running_loop().time()
        store.guest_connection(
            ConnectionState.RECONNECTING, attempt=2, max_attempts=3, next_attempt_at=now + 3
        )
        await wait_for(pilot, lambda: "reconnecting, attempt 2/3" in link_text(app))
        assert "next try in" in link_text(app)
        assert "latency" not in link_text(app)  # no figure for a link that is down
        assert "Retry" not in footer_text(app)  # r does nothing until the link has failed
        store.guest_connection(
            ConnectionState.RECONNECTING, attempt=2, max_attempts=3, next_attempt_at=now - 1
        )
        await wait_for(pilot, lambda: "attempt 2/3: connecting…" in link_text(app))
        assert "next try in" not in link_text(app)
        await pilot.press("r")  # not failed yet: retry is disabled
        assert guest.retried == 0
        guest.end("Could not reach the host after 3 attempts", "failed")
        await wait_for(pilot, lambda: "failed" in link_text(app))
        assert isinstance(app.screen, GuestScreen)
        await wait_for(pilot, lambda: "Retry" in footer_text(app))
        await pilot.press("r")
        assert guest.retried == 1


async def test_kicked_returns_to_browse_with_the_reason(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        guest = await join(app, pilot, fakes)
        guest.end("Removed by the host", "kicked")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert any(n.message == "Removed by the host" for n in app._notifications)
        assert app.store.get().guest is None
        assert app.guest_service is None


async def test_leave_sends_leave_and_returns_to_browse(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        guest = await join(app, pilot, fakes)
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert guest.left


async def test_q_on_guest_leaves_then_quits(app: LoudsyncApp, fakes: FakeServices) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        guest = await join(app, pilot, fakes)
        await pilot.press("q")
        await wait_for(pilot, lambda: guest.closed)
    assert app.return_code == 0
