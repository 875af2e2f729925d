"""Remote text is data on every screen: the app against hostile peers and mDNS records.

Real hosts and raw guests on 127.0.0.1 and a rogue record announced with real zeroconf on
127.0.0.1. Names with markup (`[/]`, `[/x]`, `[@click=app.quit]`) must show literally and
never crash the app or make a link; control characters must show escaped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Static
from websockets.asyncio.server import ServerConnection
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.net.discovery import SERVICE_TYPE
from loudsync_tui.net.host_service import HostService
from loudsync_tui.protocol import PROTOCOL_VERSION, DeviceInfo, Join, MemberList, now_ms
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppStore, ConnectionState, DiscoveredSession
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.dialogs.bans import BansDialog, BanTable
from loudsync_tui.tui.dialogs.kick import KickDialog
from loudsync_tui.tui.dialogs.trust import TrustDialog
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.screens.host import HostScreen
from loudsync_tui.tui.services import default_services
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.event_log import EventLog
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.session_table import SessionTable
from loudsync_tui.tui.widgets.title_bar import TitleBar
from tests.support.raw import RawGuest
from tests.support.rogue_host import rogue_host
from tests.tui.helpers import wait_for

# Real mDNS on 127.0.0.1 is one shared space: these tests run in one worker, in turn.
pytestmark = pytest.mark.xdist_group("mdns")

FAST = {"heartbeat_interval": 0.1, "heartbeat_timeout": 2.0}
MARKUP = {"dev-eve": "Eve[/]", "dev-mal": "[@click=app.quit]Mallory[/]", "dev-b": "[b]B[/b] [/x]"}
TERMINAL_ATTACK = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED"


def host_config(**changes: object) -> HostConfig:
    config = HostConfig(
        "Friday", "Grace", "dev-host", port=0, bind="127.0.0.1", discovery=False, **FAST
    )
    return replace(config, allow_unproven=True, **changes)  # type: ignore[arg-type]


def app_with(settings: AppSettings, *, browser: bool = False) -> LoudsyncApp:
    services = default_services() if browser else replace(default_services(), browser=None)
    return LoudsyncApp(store=AppStore(), settings=settings, services=services)


def guest_settings(**guest: object) -> AppSettings:
    base = AppSettings.for_device("Ada", "dev-ada")
    config = GuestConfig("", "Ada", "dev-ada", reconnect_attempts=1, reconnect_delay=0.05)
    return replace(base, guest=replace(config, **guest))  # type: ignore[arg-type]


def shown(app: LoudsyncApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def log_lines(log: EventLog) -> list[str]:
    return [strip.text.rstrip() for strip in log.lines]


def notices(app: LoudsyncApp) -> list[str]:
    return [n.message for n in app._notifications]


def host_app() -> LoudsyncApp:
    settings = replace(
        AppSettings.for_device("Grace", "dev-host"), host=host_config(), session_name="Friday"
    )
    return app_with(replace(settings, start="host"))


async def join_raw(
    app: LoudsyncApp, device_id: str, name: str, device_type: str, key: DeviceKey | None = None
) -> RawGuest:
    """JOIN as given; with `key`, proven (the id is then the key's)."""
    hosting = app.store.get().hosting
    assert hosting is not None
    raw = await RawGuest.connect(hosting.port)
    if key is not None:
        device_id = key.device_id
    device = DeviceInfo(device_id, name, device_type)
    proof = None if key is None else raw.proof(key, device_id, hosting.session_id)
    await raw.send(
        Join(
            timestamp=now_ms(),
            session_id=hosting.session_id,
            protocol_version=PROTOCOL_VERSION,
            device=device,
            proof=proof,
        )
    )
    await raw.recv_type(MemberList)
    raw.keep_alive()
    return raw


async def test_host_member_table_shows_a_hostile_device_type_literally() -> None:
    app = host_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store.get().hosting is not None)
        keys = DeviceKey.generate(), DeviceKey.generate()
        raw = await join_raw(app, "", "Ada", "[/x]", keys[0])
        link = await join_raw(app, "", "Bob", "[@click=app.quit]t[/]", keys[1])
        table = app.screen.query_one(MemberTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        await pilot.pause()
        assert str(table.get_cell(keys[0].device_id, "device")) == "[/x]"
        assert str(table.get_cell(keys[1].device_id, "device")) == "[@click=app.quit]t[/]"
        await pilot.click(MemberTable)  # a link in a cell would quit the app
        assert app.is_running
        await raw.close()
        await link.close()


async def test_host_screen_kick_and_bans_show_hostile_guest_names_literally() -> None:
    app = host_app()
    guests: list[RawGuest] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.store.get().hosting is not None)
        for device_id, name in MARKUP.items():
            guests.append(await join_raw(app, device_id, name, "raw"))
        table = app.screen.query_one(MemberTable)
        await wait_for(pilot, lambda: table.row_count == 1 + len(MARKUP))
        for device_id, name in MARKUP.items():
            assert str(table.get_cell(device_id, "name")) == name
        log = app.screen.query_one(EventLog)
        await wait_for(pilot, lambda: any("Mallory[/] joined" in line for line in log_lines(log)))
        # "HH:MM:SS " and then the name, exactly as the guest typed it
        assert any(line[9:].startswith(MARKUP["dev-mal"] + " joined") for line in log_lines(log))

        table.move_cursor(row=table.get_row_index("dev-eve"))
        await pilot.press("k")
        await wait_for(pilot, lambda: isinstance(app.screen, KickDialog))
        assert shown(app, ".dialog-title") == "Kick Eve[/]?"
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, HostScreen))
        await wait_for(pilot, lambda: table.row_count == len(MARKUP))
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BansDialog))
        bans = app.screen.query_one(BanTable)
        await wait_for(pilot, lambda: bans.row_count == 1)
        assert str(bans.get_cell("dev-eve", "who")) == "Eve[/]"
        await pilot.press("l")
        await wait_for(pilot, lambda: "Ban on Eve[/] lifted: they can join again." in notices(app))
        await pilot.pause()
        assert app.is_running
        for raw in guests:
            await raw.close()


async def test_guest_screen_shows_hostile_session_and_host_names_and_reason_literally() -> None:
    host = HostService(
        host_config(session_name="Party [/]", host_name="[@click=app.quit]Grace[/]"), AppStore()
    )
    await host.start()
    try:
        app = app_with(guest_settings())
        async with app.run_test(size=(120, 40)) as pilot:
            app.store.session_seen(
                DiscoveredSession(
                    key="party",
                    session_id=host.session_id,
                    name="Party [/]",
                    host_name="[@click=app.quit]Grace[/]",
                    addresses=("127.0.0.1",),
                    port=host.port,
                    members=1,
                    max_members=10,
                    protocol_version=1,
                    joinable=True,
                )
            )
            table = app.screen.query_one(SessionTable)
            await wait_for(pilot, lambda: table.row_count == 1)
            assert str(table.get_cell("party", "name")) == "Party [/]"
            assert str(table.get_cell("party", "host")) == "[@click=app.quit]Grace[/]"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, GuestScreen))
            await wait_for(
                pilot,
                lambda: (
                    app.store.get().guest is not None
                    and app.store.get().guest.connection is ConnectionState.CONNECTED
                ),  # type: ignore[union-attr]
            )
            await wait_for(pilot, lambda: "hosted by" in shown(app, "#guest-info"))
            assert shown(app, "#guest-info").startswith(
                "Party [/] hosted by [@click=app.quit]Grace[/] at 127.0.0.1:"
            )
            assert "In Party [/]" in str(app.screen.query_one(TitleBar).render())
            await host.aclose(reason="[/x] over, [@click=app.quit]bye[/]")
            await wait_for(pilot, lambda: isinstance(app.screen, BrowseScreen))
            await wait_for(
                pilot, lambda: any("[/x] over, [@click=app.quit]bye[/]" in n for n in notices(app))
            )
            assert app.is_running
    finally:
        await host.aclose()


async def test_event_log_notice_and_log_file_escape_a_hostile_close_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A close reason bypasses the protocol's decoder: the escaping layer must catch it."""
    reason = "\x1b]52;c;cHduZWQ=\x07\n[20:48:09] Grace (host) set a new PIN: 000000 [/x]"

    async def drop(ws: ServerConnection, _join: Join) -> None:
        await ws.close(1011, reason)

    caplog.set_level(logging.INFO)
    async with rogue_host(drop) as port:
        app = app_with(guest_settings(address=f"127.0.0.1:{port}", tls=False))
        async with app.run_test(size=(120, 40)) as pilot:
            app.start_join(app.settings.guest)
            await wait_for(pilot, lambda: app.screen.query(EventLog))
            log = app.screen.query_one(EventLog)
            await wait_for(pilot, lambda: any("cHduZWQ" in line for line in log_lines(log)))
            lines = log_lines(log)
            assert not any("\x1b" in line or "\x07" in line for line in lines)
            assert not any(line.startswith("[20:48:09]") for line in lines)
            assert any(r"\x1b]52;c;cHduZWQ=\x07" in line for line in lines)
            assert any("000000 [/x]" in line for line in lines)  # markup shown as typed
            await wait_for(pilot, lambda: any("cHduZWQ" in n for n in notices(app)))
            assert not any("\x1b" in n for n in notices(app))
            assert app.is_running
    logged = [r.getMessage() for r in caplog.records if "cHduZWQ" in r.getMessage()]
    assert logged
    assert not any("\x1b" in m or "\n[20:48:09]" in m for m in logged)


async def test_trust_dialog_shows_hostile_host_and_session_names_literally(tmp_path: Path) -> None:
    config = host_config(tls=True, key_dir=str(tmp_path / "host"), host_name="[/x] Grace")
    host = HostService(replace(config, session_name="[@click=app.quit]Friday[/]"), AppStore())
    await host.start()
    try:
        app = app_with(guest_settings(trust_dir=str(tmp_path / "trust")))
        async with app.run_test(size=(120, 40)) as pilot:
            app.join(f"127.0.0.1:{host.port}")
            # The screen is pushed before its widgets are mounted: wait for the question.
            await wait_for(
                pilot,
                lambda: (
                    isinstance(app.screen, TrustDialog)
                    and bool(app.screen.query("#trust-question"))
                ),
                within=10,
            )
            question = shown(app, "#trust-question")
            assert "[/x] Grace's session “[@click=app.quit]Friday[/]”" in question
            assert app.is_running
    finally:
        await host.aclose()


async def test_a_host_name_with_a_control_character_is_refused_before_any_question(
    tmp_path: Path,
) -> None:
    host = HostService(
        host_config(tls=True, key_dir=str(tmp_path / "host"), host_name=f"G{TERMINAL_ATTACK}"),
        AppStore(),
    )
    await host.start()
    try:
        app = app_with(guest_settings(trust_dir=str(tmp_path / "trust")))
        async with app.run_test(size=(120, 40)) as pilot:
            app.join(f"127.0.0.1:{host.port}")
            await wait_for(
                pilot, lambda: any("with a control character" in n for n in notices(app)), 10
            )
            assert not isinstance(app.screen, TrustDialog)
            assert not any("\x1b" in n for n in notices(app))
    finally:
        await host.aclose()


# A rogue mDNS record on the Browse screen -----------------------------------------------

ROGUE_NAME = "[/x] Party" + TERMINAL_ATTACK
ROGUE_HOST = "[@click=app.quit]Eve[/]\u202eevil"


@pytest.fixture
async def rogue_record() -> AsyncIterator[None]:
    """A record any machine on the LAN could announce (a newer protocol, so not joinable),
    with something listening at its port so Browse's reachability check finds it."""
    listener = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    aiozc = AsyncZeroconf(interfaces=["127.0.0.1"])
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        f"Rogue tui {os.getpid()}.{SERVICE_TYPE}",
        port=port,
        properties={
            "id": "rogue-tui",
            "name": ROGUE_NAME,
            "host": ROGUE_HOST,
            "members": "1",
            "max": "10",
            "v": "99",
            "tls": "0",
            "pin": "0",
        },
        server=f"rogue-tui-{os.getpid()}.local.",
        parsed_addresses=["127.0.0.1"],
    )
    await (await aiozc.async_register_service(info))
    yield
    await aiozc.async_unregister_all_services()
    await aiozc.async_close()
    listener.close()
    await listener.wait_closed()


async def test_browse_shows_a_rogue_mdns_session_escaped_and_enter_says_why_literally(
    rogue_record: None,
) -> None:
    settings = replace(guest_settings(), interfaces=("127.0.0.1",))
    app = app_with(settings, browser=True)
    async with app.run_test(size=(160, 40)) as pilot:

        def rogue_key() -> str | None:
            sessions = app.store.get().discovery.sessions
            return next((k for k, s in sessions.items() if s.session_id == "rogue-tui"), None)

        await wait_for(pilot, lambda: rogue_key() is not None, within=10)
        key = rogue_key()
        assert key is not None
        table = app.screen.query_one(SessionTable)
        await wait_for(pilot, lambda: table.row_count >= 1)
        name = str(table.get_cell(key, "name"))
        assert name == r"[/x] Party\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED"
        assert str(table.get_cell(key, "host")) == r"[@click=app.quit]Eve[/]\u202eevil"
        table.move_cursor(row=table.get_row_index(key))
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.startswith("Cannot join") for n in notices(app)))
        assert f"Cannot join {name}: needs protocol version 99" in notices(app)
        assert app.is_running
