"""Host, driven through the store and a fake service: naming, the table, kick and stop."""

from __future__ import annotations

from loudsync_tui.core.effects import MemberChanged, MemberRemoved
from loudsync_tui.store import AppStore
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.confirm import ConfirmDialog
from loudsync_tui.tui.dialogs.kick import KickDialog
from loudsync_tui.tui.dialogs.text_prompt import TextPrompt
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.widgets.member_table import MemberTable
from tests.tui.fakes import FakeServices, info_of, member
from tests.tui.helpers import wait_for


async def start_hosting(app: LoudsyncApp, pilot: object) -> MemberTable:
    await pilot.press("h")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))  # type: ignore[arg-type]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_for(pilot, lambda: app.store.get().hosting is not None)  # type: ignore[arg-type]
    assert isinstance(app.screen, HostScreen)
    return app.screen.query_one(MemberTable)


async def test_host_names_the_session_and_marks_its_own_row(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await start_hosting(app, pilot)
        assert fakes.hosts[0].config.session_name == "Grace's session"
        assert fakes.hosts[0].config.host_id == "dev-grace"
        await wait_for(pilot, lambda: table.row_count == 1)
        assert "(you)" in str(table.get_cell("dev-grace", "name"))
        info = str(app.screen.query_one("#host-info").render())
        assert "192.168.1.20:8080" in info
        assert "1/10" in info


async def test_member_rows_update_in_place(app: LoudsyncApp, store: AppStore) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await start_hosting(app, pilot)
        for n in (1, 2, 3):
            store.host_member_joined(member(n))
        await wait_for(pilot, lambda: table.row_count == 4)
        await pilot.press("down", "down")
        assert table.selected_key == "dev-0002"
        changed = member(2, latency=42.0)
        store.host_effects(
            [
                MemberChanged(info_of(changed), changed.device_type),
                MemberRemoved("dev-0001", "Member 1", "left"),
            ]
        )
        await wait_for(pilot, lambda: table.row_count == 3)
        assert table.selected_key == "dev-0002"
        assert str(table.get_cell("dev-0002", "latency")) == "42"


async def test_kick_asks_first_and_reaches_the_service(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await start_hosting(app, pilot)
        fakes.hosts[0].join_member(1)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("k")  # own row: refused, no dialog
        await pilot.pause()
        assert isinstance(app.screen, HostScreen)
        await pilot.press("down", "k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        assert fakes.hosts[0].kicked == []
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert fakes.hosts[0].kicked == ["dev-0001"]
        assert fakes.hosts[0].address_bans == []


async def test_stop_confirms_then_returns_to_browse(app: LoudsyncApp, fakes: FakeServices) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await start_hosting(app, pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        assert not fakes.hosts[0].stopped
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
        assert fakes.hosts[0].stopped
        assert app.host_service is None


async def test_host_command_with_a_name_skips_the_prompt(
    store: AppStore, fakes: FakeServices
) -> None:
    from dataclasses import replace

    from loudsync_tui.tui.settings import AppSettings

    settings = replace(
        AppSettings.for_device("Grace", "dev-grace"), start="host", session_name="Friday"
    )
    app = LoudsyncApp(store=store, settings=settings, services=fakes.services())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: store.get().hosting is not None)
        assert isinstance(app.screen, HostScreen)
        assert fakes.hosts[0].config.session_name == "Friday"


async def test_host_start_failure_is_a_notice_on_browse(
    app: LoudsyncApp, fakes: FakeServices
) -> None:
    fakes.host_fail = "Cannot listen on 0.0.0.0:8080: address in use"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen) and fakes.hosts)
        await wait_for(
            pilot, lambda: any("address in use" in n.message for n in app._notifications)
        )


async def test_q_on_host_confirms_then_closes(app: LoudsyncApp, fakes: FakeServices) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await start_hosting(app, pilot)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: fakes.hosts[0].stopped)
    assert app.return_code == 0


async def test_a_burst_of_member_updates_is_one_redraw(app: LoudsyncApp, store: AppStore) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await start_hosting(app, pilot)
        before = store.notifications
        for n in range(1000):
            store.host_member_joined(member(n + 1))
        await wait_for(pilot, lambda: table.row_count == 1001)
        # One call for the table's slice, whatever the size of the burst.
        assert store.notifications - before <= 4
        await pilot.press("down")
        assert table.cursor_row == 1


async def test_app_commands_reach_the_running_service(
    app: LoudsyncApp, store: AppStore, fakes: FakeServices
) -> None:
    """Screens ask the app; the app asks the service it holds (none: nothing happens)."""
    app.kick("nobody")  # no host running: nothing happens, nothing breaks
    app.lift_ban("nobody")
    app.change_pin("4321")
    app.stop_hosting()
    app.retry()
    async with app.run_test(size=(80, 24)) as pilot:
        await start_hosting(app, pilot)
        host = fakes.hosts[0]
        for n in (1, 2):
            host.join_member(n)
        app.kick("dev-0001")
        app.kick("dev-0002", ban_address=True)
        app.lift_ban("192.168.1.32")
        app.change_pin("4321")
        assert host.kicked == ["dev-0001", "dev-0002"]
        assert host.address_bans == ["dev-0002"]
        assert host.lifted == ["192.168.1.32"]
        hosting = store.get().hosting
        assert hosting is not None
        assert list(hosting.members) == ["dev-grace"]
        assert hosting.banned == {"dev-0001", "dev-0002"}
        assert hosting.banned_addresses == frozenset()
        assert hosting.pin == host.core.pin == "4321"
        app.stop_hosting()
        await wait_for(pilot, lambda: app.host_service is None)
        assert host.stopped
        assert store.get().hosting is None
        app.kick("dev-0003")
        assert host.kicked == ["dev-0001", "dev-0002"]
