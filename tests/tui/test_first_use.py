"""The app as a new user finds it: quitting from anywhere, a join that never connects, a
small terminal, long names on Browse, and what kick-and-ban bans."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from textual.widgets import Static

from loudsync_tui.store import AppStore, ConnectionState, DiscoveredSession
from loudsync_tui.tui import format
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.demo import FINGERPRINT, PIN, demo_app, scenes
from loudsync_tui.tui.dialogs.bans import BansDialog
from loudsync_tui.tui.dialogs.confirm import ConfirmDialog
from loudsync_tui.tui.dialogs.kick import KickDialog
from loudsync_tui.tui.dialogs.text_prompt import TextPrompt
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.screens.help import HelpScreen
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.services import HostRunner
from loudsync_tui.tui.widgets.session_table import SessionTable
from tests.tui.fakes import FakeServices
from tests.tui.helpers import wait_for
from tests.tui.test_host_screen import start_hosting
from tests.tui.test_live import guest_app, guest_joins, host_app


def screen_text(app: LoudsyncApp) -> str:
    """What the terminal shows now, one line per row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def dialog_text(app: LoudsyncApp) -> str:
    return "\n".join(str(w.render()) for w in app.screen.query(Static))


def asking_to_quit(app: LoudsyncApp) -> bool:
    screen = app.screen
    return isinstance(screen, ConfirmDialog) and screen.question == "Stop the session and quit?"


# 1. q, Ctrl-C and Ctrl-Q quit from anywhere -------------------------------------------


async def test_q_in_help_quits_when_not_hosting(app: LoudsyncApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("q")
        await wait_for(pilot, lambda: app.return_code == 0)


async def test_q_in_every_host_dialog_asks_to_quit(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await start_hosting(app, pilot)
        fakes.hosts[0].join_member(1)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("down")
        for key, dialog in (
            ("question_mark", HelpScreen),
            ("b", BansDialog),
            ("k", KickDialog),
            ("s", ConfirmDialog),
        ):
            await pilot.press(key)
            await wait_for(pilot, lambda d=dialog: isinstance(app.screen, d))  # type: ignore[misc]
            await pilot.press("q")
            await wait_for(pilot, lambda: asking_to_quit(app))
            await pilot.press("q")  # the question answers y/n/Esc only: q does nothing more
            await pilot.pause()
            assert asking_to_quit(app)
            await pilot.press("n")
            await wait_for(pilot, lambda d=dialog: isinstance(app.screen, d))  # type: ignore[misc]
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        assert not fakes.hosts[0].stopped


async def test_ctrl_c_asks_a_host_and_a_second_ctrl_c_quits(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await start_hosting(app, pilot)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: asking_to_quit(app))
        assert not any("ctrl+q" in n.message for n in app._notifications)
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: fakes.hosts[0].stopped)
    assert app.return_code == 0


async def test_ctrl_q_asks_a_host_too(app: LoudsyncApp, fakes: FakeServices) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await start_hosting(app, pilot)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: asking_to_quit(app))
        await pilot.press("y")
        await wait_for(pilot, lambda: fakes.hosts[0].stopped)
    assert app.return_code == 0


async def test_q_types_in_a_prompt_and_ctrl_c_still_quits(app: LoudsyncApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, TextPrompt)
        assert app.screen.query_one("#prompt-input").value == "q"  # type: ignore[attr-defined]
        await pilot.press("ctrl+c")
        await wait_for(pilot, lambda: app.return_code == 0)


# 2. A join that never connects --------------------------------------------------------


async def test_a_dead_address_says_so_once_and_offers_retry(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        app.join("127.0.0.1:1")
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen) and fakes.guests)
        await wait_for(pilot, lambda: "Joining 127.0.0.1:1…" in screen_text(app))
        assert "In 127.0.0.1:1" not in screen_text(app)
        # What GuestService does when nothing listens there (see GuestSession._lost).
        store.log_event("Nothing is listening at 127.0.0.1:1", "warning")
        store.guest_connection(ConnectionState.FAILED)
        store.guest_ended("Could not connect: nothing is listening at 127.0.0.1:1", "failed")
        await wait_for(pilot, lambda: "security: not connected" in screen_text(app))
        shown = screen_text(app)
        assert "127.0.0.1:1 at 127.0.0.1:1" not in shown
        assert "In 127.0.0.1:1" not in shown
        assert "Could not connect: nothing is listening at 127.0.0.1:1" in shown
        assert "press r to retry, l to leave" in shown
        notices = [(n.title, n.message) for n in app._notifications]
        assert notices == [
            ("Could not connect", "Could not connect: nothing is listening at 127.0.0.1:1")
        ]
        await pilot.press("r")
        assert fakes.guests[0].retried == 1
        await wait_for(pilot, lambda: "Joining 127.0.0.1:1…" in screen_text(app))


async def test_a_dead_address_with_the_real_service_is_one_notice() -> None:
    app = guest_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.join("127.0.0.1:1")
        await wait_for(pilot, lambda: "security: not connected" in screen_text(app))
        await pilot.pause(0.1)
        assert [n.title for n in app._notifications] == ["Could not connect"]
        assert "nothing is listening at 127.0.0.1:1" in screen_text(app)
        assert isinstance(app.screen, GuestScreen)
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))


# 3. The Host screen's header at 60x15 -------------------------------------------------


async def test_host_header_shows_in_full_at_60x15_however_the_start_is_timed() -> None:
    """The header once came up scrolled away or clipped, depending on whether the
    session's details arrived before or after the member table took the focus."""
    lines = format.fingerprint_lines(FINGERPRINT)
    for delay in (0.0, 0.0, 0.01, 0.03, 0.06, 0.1):
        app = demo_app("host")
        make_host = app.services.host

        def late_host(
            config: object, store: AppStore, delay: float = delay, make_host: object = make_host
        ) -> HostRunner:
            made: HostRunner = make_host(config, store)  # type: ignore[operator]
            start = made.start

            async def started_late() -> None:
                await asyncio.sleep(delay)
                await start()

            made.start = started_late  # type: ignore[method-assign]
            return made

        app.services = replace(app.services, host=late_host)
        _, prepare = scenes()["host"]
        async with app.run_test(size=(60, 15)) as pilot:
            await prepare(pilot)
            await pilot.pause(0.05)
            shown = screen_text(app)
            for must in (f"PIN {PIN}", "members 5/10", lines[0], lines[1], "192.168.1.20:8080"):
                assert must in shown, f"{must!r} missing after a {delay} s start:\n{shown}"


# 4. Long names on Browse --------------------------------------------------------------


async def test_a_long_session_name_leaves_the_join_column_on_screen(
    app: LoudsyncApp, store: AppStore
) -> None:
    name = "A very long session name that somebody typed in full, 64 chars!!"
    assert len(name) == 64
    store.session_seen(
        DiscoveredSession(
            "long", "long", name, "Grace's laptop at home", ("192.168.1.20",), 8080, 1, 10, 1, True
        )
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one(SessionTable).row_count == 1)
        await pilot.pause()
        shown = screen_text(app)
        row = next(line for line in shown.splitlines() if "192.168.1.20:8080" in line)
        assert row.rstrip().endswith("plain"), shown  # the Join column, not encrypted
        assert "Join" in shown
        assert "…" in row
        assert isinstance(app.screen, BrowseScreen)


# 5. What kick-and-ban bans ------------------------------------------------------------


async def test_kick_dialog_names_the_address_it_would_ban(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await start_hosting(app, pilot)
        fakes.hosts[0].join_member(1, address="192.168.1.33")
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("down", "k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        text = dialog_text(app)
        assert "a kick and ban 192.168.1.33" in text
        assert "other member" not in text


async def test_kick_dialog_warns_when_others_share_the_address(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await start_hosting(app, pilot)
        for n in (1, 2, 3):
            fakes.hosts[0].join_member(n, address="127.0.0.1")
        await wait_for(pilot, lambda: table.row_count == 4)
        await pilot.press("down", "k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        text = dialog_text(app)
        assert "a kick and ban 127.0.0.1" in text
        assert "127.0.0.1 is this machine" in text
        assert "2 other members are connected from 127.0.0.1 now" in text
        await pilot.press("a")
        await wait_for(pilot, lambda: fakes.hosts[0].address_bans == ["dev-0001"])


async def test_kick_dialog_without_a_known_address_offers_no_address_ban(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await start_hosting(app, pilot)
        fakes.hosts[0].join_member(1, address="")
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("down", "k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        assert "kick and ban" not in dialog_text(app)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, KickDialog)
        assert fakes.hosts[0].address_bans == []


async def test_a_real_host_knows_where_a_guest_joined_from() -> None:
    app = host_app()
    async with app.run_test(size=(80, 24)) as pilot:
        guest, _table = await guest_joins(app, pilot)
        await pilot.press("down", "k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        assert "a kick and ban 127.0.0.1" in dialog_text(app)
        assert "127.0.0.1 is this machine" in dialog_text(app)
        await pilot.press("n")
        await guest.aclose()


async def test_the_join_column_stays_on_screen_when_a_note_grows_later(
    app: LoudsyncApp, store: AppStore
) -> None:
    """Columns only grow on update: a name laid out for a short note must give the room
    back when the note grows (a host found unreachable, a rival appearing)."""
    name = "A very long session name that somebody typed in full, 64 chars!!"
    session = DiscoveredSession(
        "long", "long", name, "Grace's laptop at home", ("192.168.1.20",), 8080, 1, 10, 1, True
    )
    store.session_seen(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one(SessionTable).row_count == 1)
        store.session_reachable("long", False)
        await wait_for(pilot, lambda: "unreachable" in screen_text(app))
        await pilot.pause()
        row = next(line for line in screen_text(app).splitlines() if "192.168.1.20" in line)
        assert row.rstrip().endswith("unreachable"), row
