"""The app's Browse screen over real mDNS on 127.0.0.1: a running host is listed and joined,
and one killed without a goodbye is marked unreachable."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from textual.widgets import Static

from loudsync_tui.config import HostConfig
from loudsync_tui.net.discovery import ProbeOptions, Security, SessionAdvertiser
from loudsync_tui.net.host_service import HostService
from loudsync_tui.protocol import PROTOCOL_VERSION, SessionInfo
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppStore, ConnectionState
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.screens.browse import BrowseScreen
from loudsync_tui.tui.screens.guest import GuestScreen
from loudsync_tui.tui.services import default_services
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.widgets.session_table import SessionTable
from tests.support.processes import launch
from tests.tui.helpers import wait_for

# Real mDNS on 127.0.0.1 is one shared space: these tests run in one worker, in turn.
pytestmark = pytest.mark.xdist_group("mdns")

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
        device = DeviceKey.generate()  # the host admits proven devices only
        base = AppSettings.for_device("Ada", device.device_id, device.private)
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
            assert device.device_id in hosting.members
    finally:
        await host.aclose()


async def test_two_records_claiming_one_session_are_both_listed_with_a_warning(
    tmp_path: Path,
) -> None:
    """A rogue copies the real announcement (name, host name, session id) but says tls=0:
    Browse shows both rows with their addresses and warns, and picks neither."""
    tag = uuid.uuid4().hex[:8]
    info = SessionInfo(
        id=f"claimed-{tag}",
        name=f"Claimed {tag}",
        host_id="dev-real",
        host_name="Grace",
        max_members=10,
        member_count=1,
        protocol_version=PROTOCOL_VERSION,
    )
    # Both answer on their ports, so neither row is marked unreachable.
    listeners = [
        await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0) for _ in range(2)
    ]
    real_port, rogue_port = (int(server.sockets[0].getsockname()[1]) for server in listeners)
    real, rogue = SessionAdvertiser(LOOPBACK), SessionAdvertiser(LOOPBACK)
    await real.start(info, real_port, security=Security("ab12" * 16, pin_required=True))
    await rogue.start(info, rogue_port, security=Security(None, pin_required=True))
    try:
        base = AppSettings.for_device("Ada", "dev-rival-guest")
        settings = replace(
            base, interfaces=LOOPBACK, guest=replace(base.guest, trust_dir=str(tmp_path))
        )
        app = LoudsyncApp(store=AppStore(), settings=settings, services=default_services())
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.screen.query_one(SessionTable)

            def claims() -> list[str]:
                sessions = app.store.get().discovery.sessions
                return sorted(k for k, s in sessions.items() if s.session_id == info.id)

            await wait_for(pilot, lambda: len(claims()) == 2, within=8)
            keys = claims()
            await wait_for(pilot, lambda: all(k in table.rows for k in keys))
            addresses = {str(table.get_cell(k, "address")) for k in keys}
            assert addresses == {f"127.0.0.1:{real_port}", f"127.0.0.1:{rogue_port}"}
            notes = {str(table.get_cell(k, "note")) for k in keys}
            assert notes == {"⚠ rival PIN", "⚠ rival ✗ PIN without TLS"}
            warning = app.screen.query_one("#browse-warning", Static)
            await wait_for(pilot, lambda: warning.display)
            said = str(warning.render())
            assert f"2 announcements claim “Claimed {tag}”" in said
            assert f"127.0.0.1:{real_port}" in said
            assert f"127.0.0.1:{rogue_port}" in said
            assert "impostor" in said
    finally:
        await rogue.stop()
        await real.stop()
        for listener in listeners:
            listener.close()
            await listener.wait_closed()


async def test_a_host_killed_without_goodbye_is_marked_unreachable_and_enter_says_so(
    tmp_path: Path,
) -> None:
    """SIGKILL leaves the host's records cached (the row stays until they expire), but
    Browse sees within seconds that nobody answers there, and says so on Enter."""
    session_id = f"killed-{uuid.uuid4().hex[:8]}"
    host = await launch(
        *("host", "--headless", "--no-tls", "--bind", "127.0.0.1", "--port", "0"),
        *("--interface", "127.0.0.1", "--name", "Grace", "--session-id", session_id),
        *("--session-name", f"Killed {session_id}"),
        config_dir=tmp_path / "host",
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert host.stdout is not None
        async with asyncio.timeout(10):
            line = (await host.stdout.readline()).decode()
        match = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        base = AppSettings.for_device("Ada", "dev-killed-guest")
        settings = replace(
            base,
            interfaces=LOOPBACK,
            probe=ProbeOptions(interval=0.2, timeout=0.5),
            guest=replace(base.guest, trust_dir=str(tmp_path)),
        )
        app = LoudsyncApp(store=AppStore(), settings=settings, services=default_services())
        async with app.run_test(size=(80, 24)) as pilot:
            table = app.screen.query_one(SessionTable)

            def key() -> str | None:
                sessions = app.store.get().discovery.sessions.items()
                return next((k for k, s in sessions if s.session_id == session_id), None)

            def note() -> str:
                found = key()
                return str(table.get_cell(found, "note")) if found in table.rows else ""

            await wait_for(pilot, lambda: note() == "plain", within=10)
            host.kill()  # no goodbye: the records stay in the cache
            await host.wait()
            await wait_for(pilot, lambda: note() == "unreachable", within=10)
            row = key()
            assert row is not None
            table.move_cursor(row=table.get_row_index(row))
            await pilot.press("enter")
            await wait_for(
                pilot, lambda: any("not answering" in n.message for n in app._notifications)
            )
            assert isinstance(app.screen, BrowseScreen)
            assert app.store.get().guest is None  # no join was tried

            # Something listens there again (a restarted host): the mark goes.
            server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
            try:
                await wait_for(pilot, lambda: note() == "plain", within=10)
            finally:
                server.close()
                await server.wait_closed()
    finally:
        if host.returncode is None:
            host.kill()
            await host.wait()
