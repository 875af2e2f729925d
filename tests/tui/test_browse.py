"""Browse, driven through the store: live rows, cursor that stays put, joining."""

from __future__ import annotations

import pytest

from loudsync_tui.store import AppStore, DiscoveredSession
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.text_prompt import TextPrompt, check_address
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.widgets.session_table import SessionTable
from tests.tui.fakes import FakeServices
from tests.tui.helpers import wait_for


def session(n: int, members: int = 1, joinable: bool = True) -> DiscoveredSession:
    return DiscoveredSession(
        key=f"s{n}",
        session_id=f"id{n}",
        name=f"Session {n}",
        host_name=f"Host {n}",
        addresses=(f"192.168.1.{n}",),
        port=8080,
        members=members,
        max_members=10,
        protocol_version=1,
        joinable=joinable,
        why_not=None if joinable else "newer protocol",
    )


async def test_empty_list_says_it_is_searching_and_how_to_join(app: LoudsyncApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        empty = app.screen.query_one("#browse-empty")
        assert empty.display
        assert "Searching" in str(empty.render())
        assert "join by address" in str(empty.render())
        assert not app.screen.query_one(SessionTable).display


async def test_rows_update_in_place_and_cursor_stays(app: LoudsyncApp, store: AppStore) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        for n in (1, 2, 3):
            store.session_seen(session(n))
        table = app.screen.query_one(SessionTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.press("j")
        assert table.selected_key == "s2"
        store.session_seen(session(2, members=5))
        store.session_seen(session(4))
        store.session_lost("s1")
        await wait_for(pilot, lambda: "s4" in {k.value for k in table.rows})
        assert table.selected_key == "s2"
        assert [k.value for k in table.rows] == ["s2", "s3", "s4"]
        assert str(table.get_cell("s2", "members")) == "5/10"


async def test_enter_joins_the_selected_session(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        store.session_seen(session(1))
        store.session_seen(session(7))
        table = app.screen.query_one(SessionTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        assert fakes.guests[0].config.address == "192.168.1.7:8080"
        assert fakes.guests[0].config.session_id == "id7"
        assert fakes.guests[0].config.device_id == "dev-grace"


async def test_unjoinable_session_is_a_notice(app: LoudsyncApp, store: AppStore) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        store.session_seen(session(1, joinable=False))
        await wait_for(pilot, lambda: app.screen.query_one(SessionTable).row_count == 1)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, BrowseScreen)
        assert any("newer protocol" in n.message for n in app._notifications)


async def test_join_by_address(app: LoudsyncApp, fakes: FakeServices) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        await pilot.press(*"10.0.0.5:9000", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        assert fakes.guests[0].config.address == "10.0.0.5:9000"


def test_address_check() -> None:
    assert check_address("10.0.0.5") is None
    assert check_address("host.local:8080") is None
    assert check_address("ws://x:1") is None
    assert check_address("x:99999") is not None
    assert check_address(":80") is not None


async def test_help_lists_the_screens_keys_first(app: LoudsyncApp) -> None:
    from loudsync_tui.tui.screens.help import HelpScreen

    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert isinstance(app.screen, HelpScreen)
        described = [what for _, what in app.screen.rows]
        assert described[:6] == ["Join", "Host", "Join address", "Rescan", "Down", "Up"]
        assert {"Help", "Quit", "Move through the table"} <= set(described)
        # The table's own keys are its internals, not the app's: none is listed.
        table_keys = {"Page Left", "Page Right", "Page Up", "Page Down", "Top", "Bottom"}
        assert not table_keys & set(described), described
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))


@pytest.mark.parametrize("start", ["browse", "host", "guest"])
async def test_every_footer_key_fits_at_80x24(start: str) -> None:
    from textual.widgets._footer import FooterKey

    from loudsync_tui.tui.demo import demo_app, scenes

    app = demo_app(start)
    async with app.run_test(size=(80, 24)) as pilot:
        await scenes()["host" if start != "browse" else "browse"][1](pilot)  # type: ignore[arg-type]
        keys = list(app.screen.query(FooterKey))
        assert keys
        assert all(k.region.right <= 80 and k.region.width > 0 for k in keys)


async def test_enter_on_a_host_that_stopped_answering_says_so_and_does_not_join(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        store.session_seen(session(1))
        store.session_reachable("s1", False)
        table = app.screen.query_one(SessionTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert str(table.get_cell("s1", "note")) == "unreachable"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, BrowseScreen)
        assert not fakes.guests
        (notice,) = [n for n in app._notifications if n.title == "Host not answering"]
        assert "Session 1 at 192.168.1.1:8080 is not answering" in notice.message
        store.session_reachable("s1", True)  # it answers again: the mark goes, Enter joins
        await wait_for(pilot, lambda: str(table.get_cell("s1", "note")) != "unreachable")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
        assert not store.get().discovery.watched  # Browse is covered: no more checks


async def test_hosts_are_checked_only_while_browse_is_on_screen(
    app: LoudsyncApp, store: AppStore
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().discovery.watched)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        await wait_for(pilot, lambda: not store.get().discovery.watched)
        await pilot.press("escape")
        await wait_for(pilot, lambda: store.get().discovery.watched)
