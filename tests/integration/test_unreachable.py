"""Hosts that vanish without an mDNS goodbye, and `discover` checking who answers.

A real `loudsync-tui host --headless` process is SIGKILLed: its records stay in the
browser's cache (as after a power cut) while its port stops answering. Everything runs
on 127.0.0.1; waits have deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from loudsync_tui.net.discovery import (
    ProbeOptions,
    Security,
    SessionAdvertiser,
    SessionBrowser,
)
from loudsync_tui.protocol import PROTOCOL_VERSION, SessionInfo
from loudsync_tui.store import AppState, AppStore, DiscoveredSession
from loudsync_tui.tui.services import store_listener
from tests.support.processes import launch
from tests.support.waiting import until

# Real mDNS on 127.0.0.1 is one shared space: these tests run in one worker, in turn.
pytestmark = pytest.mark.xdist_group("mdns")

LOOPBACK = ("127.0.0.1",)
HOST_LINE = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)")
FAST = ProbeOptions(interval=0.2, timeout=0.5)


Spawn = Callable[..., Awaitable[asyncio.subprocess.Process]]


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Spawn]:
    """Starts `python -m loudsync_tui ARGS`; whatever is still running is killed after."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(*args: str) -> asyncio.subprocess.Process:
        proc = await launch(*args, config_dir=tmp_path / "config")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def start_host(spawn: Spawn, session_id: str) -> tuple[asyncio.subprocess.Process, int]:
    """A headless host advertising on 127.0.0.1; the process and its port."""
    host = await spawn(
        "host",
        "--headless",
        "--no-tls",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--interface",
        "127.0.0.1",
        "--name",
        "Grace",
        "--session-name",
        f"Doomed {session_id}",
        "--session-id",
        session_id,
    )
    assert host.stdout is not None
    async with asyncio.timeout(10):
        line = (await host.stdout.readline()).decode()
    match = HOST_LINE.search(line)
    assert match, line
    return host, int(match.group(1))


def find(state: AppState, session_id: str) -> DiscoveredSession | None:
    return next((s for s in state.discovery.sessions.values() if s.session_id == session_id), None)


def reachable(state: AppState, session_id: str) -> bool | None:
    found = find(state, session_id)
    return None if found is None else found.reachable


async def test_a_host_killed_without_goodbye_is_marked_unreachable_within_10_s(
    spawn: Spawn,
) -> None:
    session_id = f"doomed-{uuid.uuid4().hex[:8]}"
    host, port = await start_host(spawn, session_id)
    store = AppStore()
    browser = SessionBrowser(store_listener(store), LOOPBACK, FAST)
    await browser.start()
    try:
        state = await until(store, lambda s: reachable(s, session_id) is True, 10)
        seen = find(state, session_id)
        assert seen is not None
        assert (seen.port, seen.reachable) == (port, True)

        loop = asyncio.get_running_loop()
        host.kill()  # SIGKILL: no goodbye, the records stay cached
        await host.wait()
        killed_at = loop.time()
        state = await until(store, lambda s: reachable(s, session_id) is False, 10)
        print(f"\nmarked unreachable {loop.time() - killed_at:.2f} s after SIGKILL")
        assert find(state, session_id) is not None  # still listed: only the TTL removes it

        # Something answers on that port again (a restarted host): the mark goes.
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        try:
            await until(store, lambda s: reachable(s, session_id) is True, 10)
        finally:
            server.close()
            await server.wait_closed()
    finally:
        await browser.stop()


@pytest.fixture
async def advertised() -> AsyncIterator[tuple[str, int, str]]:
    """A TLS-and-PIN record for a port where something listens: (session id, port, fp)."""
    tag = uuid.uuid4().hex[:8]
    info = SessionInfo(
        id=f"live-{tag}",
        name=f"Live {tag}",
        host_id="dev-live",
        host_name="Grace",
        max_members=10,
        member_count=2,
        protocol_version=PROTOCOL_VERSION,
    )
    fingerprint = "ab12" * 16
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    advertiser = SessionAdvertiser(LOOPBACK)
    await advertiser.start(info, port, security=Security(fingerprint, pin_required=True))
    try:
        yield info.id, port, fingerprint
    finally:
        await advertiser.stop()
        server.close()
        await server.wait_closed()


async def test_discover_json_streams_each_session_with_its_checks_and_ctrl_c_exits_0(
    spawn: Spawn, advertised: tuple[str, int, str]
) -> None:
    session_id, port, fingerprint = advertised
    proc = await spawn("discover", "--json", "--timeout", "60", "--interface", "127.0.0.1")
    assert proc.stdout is not None
    record: dict[str, object] = {}
    async with asyncio.timeout(15):  # long before the 60 s window ends
        while record.get("sessionId") != session_id:
            line = await proc.stdout.readline()
            assert line, "discover ended without printing the session"
            record = json.loads(line)
    assert record["port"] == port
    assert record["tls"] is True
    assert record["fingerprint"] == fingerprint
    assert record["pin"] is True
    assert record["reachable"] is True
    assert proc.returncode is None  # still listening

    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(10):
        rest, errors = await proc.communicate()
    assert proc.returncode == 0, errors.decode()
    assert "Traceback" not in errors.decode()
    for extra in rest.decode().splitlines():  # anything after is whole JSON too
        json.loads(extra)


async def test_discover_table_shows_who_answers(
    spawn: Spawn, advertised: tuple[str, int, str]
) -> None:
    session_id, port, _ = advertised
    proc = await spawn("discover", "--timeout", "2", "--interface", "127.0.0.1")
    async with asyncio.timeout(20):
        out, errors = await proc.communicate()
    assert proc.returncode == 0, errors.decode()
    row = next(line for line in out.decode().splitlines() if f":{port}" in line)
    assert session_id.removeprefix("live-") in row
    assert "joinable" in row  # it answered; one that does not says "not answering"
    assert "not answering" not in row
