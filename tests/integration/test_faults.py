"""Faults: a guest that stops reading, and a host process that dies with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from loudsync_tui.net.host_service import HostService
from loudsync_tui.protocol import (
    PROTOCOL_VERSION,
    DeviceInfo,
    Join,
    MemberJoined,
    MemberLeft,
    MemberList,
    Ping,
    encode,
    now_ms,
)
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppState, ConnectionState
from tests.integration.conftest import GuestFactory, HostFactory
from tests.support.raw import RawGuest
from tests.support.waiting import eventually, until
from tests.support.wire import TEXT, WireClient, frame

STUCK_BUFFER = 256 * 1024
"""Bytes the host must hold unsent for the stuck guest before the test goes on: well past
the transport's 64 KiB high-water mark, so its writes are paused, not merely queued."""


async def _raw_member(port: int, device_id: str) -> RawGuest:
    raw = await RawGuest.connect(port)
    await raw.join(device_id, device_id)
    await raw.recv_type(MemberList)
    raw.keep_alive(0.05)
    return raw


def _unsent(host: HostService) -> int:
    """The most bytes the host holds unsent for any one connection."""
    return max(host.server.unsent_bytes().values(), default=0)


async def _joined(watcher: RawGuest, member_id: str, timeout: float = 5.0) -> float:
    """Wait for MEMBER_JOINED of `member_id` (skipping others); the monotonic arrival time."""
    async with asyncio.timeout(timeout):
        while (await watcher.recv_type(MemberJoined)).member.id != member_id:
            pass
    return time.monotonic()


async def test_a_guest_that_stops_reading_delays_no_one_and_is_dropped_by_the_heartbeat(
    make_host: HostFactory,
) -> None:
    interval, timeout = 0.25, 2.0
    # The rate limit is lifted so the stuck guest can make the host write it megabytes of
    # PONGs in a moment: that is what fills the kernel's buffers and then the host's.
    host = await make_host(
        max_members=20,
        heartbeat_interval=interval,
        heartbeat_timeout=timeout,
        rate_per_second=1e9,
        rate_burst=10**9,
    )
    watchers = [await _raw_member(host.port, f"dev-w{i}") for i in range(3)]
    stuck = await WireClient.websocket(host.port, rcvbuf=4096)
    others: list[RawGuest] = []
    try:
        join = Join(
            timestamp=now_ms(),
            session_id="sess1",
            protocol_version=PROTOCOL_VERSION,
            device=DeviceInfo("dev-stuck", "Stuck", "raw"),
        )
        await stuck.send_text(encode(join))
        for watcher in watchers:
            await _joined(watcher, "dev-stuck")
        # From here on the stuck guest never reads. It asks for PONGs until the host holds
        # STUCK_BUFFER bytes it cannot deliver; then it goes silent too.
        ping = frame(TEXT, encode(Ping(timestamp=now_ms())).encode())
        burst = ping * 1000
        for _ in range(100):
            await stuck.send(burst)
            with contextlib.suppress(AssertionError):
                await eventually(lambda: _unsent(host) >= STUCK_BUFFER, timeout=0.05)
            if _unsent(host) >= STUCK_BUFFER:
                break
        silent_since = time.monotonic()
        assert _unsent(host) >= STUCK_BUFFER

        for n in range(5):
            started = time.monotonic()
            others.append(await _raw_member(host.port, f"dev-new{n}"))
            arrivals = [
                await _joined(watcher, f"dev-new{n}", timeout=interval * 4) - started
                for watcher in watchers
            ]
            assert max(arrivals) < interval, arrivals
        assert _unsent(host) >= STUCK_BUFFER  # still stuck

        for watcher in watchers:
            left = await watcher.recv_type(MemberLeft, timeout=timeout + 2)
            assert (left.member_id, left.reason) == ("dev-stuck", "timeout")
        assert time.monotonic() - silent_since >= timeout - 0.05
        # The host really lets go of the socket: it does not wait forever on a full buffer.
        await stuck.wait_closed(timeout=3.0)
        assert host.core.connection_count == len(watchers) + len(others)
        assert _unsent(host) < STUCK_BUFFER
    finally:
        stuck.close()
        for raw in watchers + others:
            await raw.close()


async def test_a_backlog_past_the_write_buffer_limit_cuts_the_link_and_holds_the_place(
    make_host: HostFactory,
) -> None:
    limit = 64 * 1024
    host = await make_host(
        heartbeat_interval=0.2,
        heartbeat_timeout=1.5,
        max_write_buffer=limit,
        rate_per_second=1e9,
        rate_burst=10**9,
    )
    watcher = await _raw_member(host.port, "dev-w")
    stuck = await WireClient.websocket(host.port, rcvbuf=4096)
    try:
        join = Join(
            timestamp=now_ms(),
            session_id="sess1",
            protocol_version=PROTOCOL_VERSION,
            device=DeviceInfo("dev-stuck", "Stuck", "raw"),
        )
        await stuck.send_text(encode(join))
        await _joined(watcher, "dev-stuck")
        # It never reads but keeps talking, so the heartbeat rule never fires: only the
        # write-buffer limit can stop the backlog from growing.
        burst = frame(TEXT, encode(Ping(timestamp=now_ms())).encode()) * 3000
        with contextlib.suppress(ConnectionError, OSError):
            for _ in range(200):
                await stuck.send(burst)
                with contextlib.suppress(AssertionError):
                    await eventually(lambda: host.core.connection_count == 1, timeout=0.05)
                if host.core.connection_count == 1:
                    break
        assert host.core.connection_count == 1
        assert _unsent(host) == 0
        await stuck.wait_closed(timeout=2.0)
        hosting = host.store.get().hosting
        assert hosting is not None
        assert hosting.members["dev-stuck"].status == "reconnecting"
        assert any("stopped reading" in e.text for e in host.store.get().log)
        left = await watcher.recv_type(MemberLeft, timeout=4)
        assert (left.member_id, left.reason) == ("dev-stuck", "disconnected")
    finally:
        stuck.close()
        await watcher.close()


LISTENING = re.compile(r"session (\S+) listening on wss?://127\.0\.0\.1:(\d+)")
HostProcess = Callable[[int], Awaitable[asyncio.subprocess.Process]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _plain_ws_flag() -> list[str]:
    """`--no-tls` where the CLI serves TLS by default, so raw clients and guests match."""
    from loudsync_tui.cli import build_parser

    with contextlib.redirect_stderr(io.StringIO()):
        try:
            build_parser().parse_args(["host", "--no-tls"])
        except SystemExit:
            return []
    return ["--no-tls"]


@pytest.fixture
async def host_process(tmp_path: Path) -> AsyncIterator[HostProcess]:
    procs: list[asyncio.subprocess.Process] = []
    env = {**os.environ, "LOUDSYNC_CONFIG_DIR": str(tmp_path / "config"), "COLUMNS": "200"}

    async def start(port: int) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loudsync_tui",
            "host",
            "--headless",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-discovery",
            "--session-id",
            "fixed-sess",
            "--name",
            "Grace",
            "--heartbeat-interval",
            "0.2",
            "--heartbeat-timeout",
            "2",
            *_plain_ws_flag(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
        )
        procs.append(proc)
        assert proc.stdout is not None
        async with asyncio.timeout(15):
            line = (await proc.stdout.readline()).decode()
        match = LISTENING.search(line)
        assert match, line
        assert (match.group(1), int(match.group(2))) == ("fixed-sess", port)
        return proc

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _guest_ids(state: AppState) -> set[str]:
    """The ids of the non-host members a guest sees."""
    members = state.guest.members.values() if state.guest else ()
    return {m.id for m in members if not m.is_host}


def _recorder(
    states: list[ConnectionState | None],
) -> Callable[[ConnectionState | None, ConnectionState | None], None]:
    def record(new: ConnectionState | None, old: ConnectionState | None) -> None:
        states.append(new)

    return record


def _connection(state: AppState) -> ConnectionState | None:
    return state.guest.connection if state.guest else None


async def test_host_killed_guests_reconnect_then_fail_then_retry_a_new_host(
    host_process: HostProcess, make_guest: GuestFactory
) -> None:
    port = _free_port()
    first = await host_process(port)
    keys = [DeviceKey.generate() for _ in range(3)]  # the CLI host requires proven guests
    guests = [
        make_guest(f"127.0.0.1:{port}", key=key, reconnect_attempts=2, reconnect_delay=0.1)
        for key in keys
    ]
    everyone = {key.device_id for key in keys}
    for guest in guests:
        state = await until(guest.store, lambda s: _guest_ids(s) == everyone)
        assert _connection(state) is ConnectionState.CONNECTED
    seen: list[list[ConnectionState | None]] = [[] for _ in guests]
    for guest, states in zip(guests, seen, strict=True):
        guest.store.subscribe(_recorder(states), _connection)

    first.send_signal(signal.SIGKILL)
    assert await first.wait() == -signal.SIGKILL
    for guest, states in zip(guests, seen, strict=True):
        state = await until(guest.store, lambda s: _connection(s) is ConnectionState.FAILED)
        assert ConnectionState.RECONNECTING in states
        assert states.index(ConnectionState.RECONNECTING) < states.index(ConnectionState.FAILED)
        assert state.guest is not None
        assert state.guest.ended_code == "failed"
        assert state.guest.ended is not None
        assert "The host stopped answering; 2 reconnect attempts failed" in state.guest.ended
        assert f"nothing is listening at 127.0.0.1:{port}" in state.guest.ended
        texts = [e.text for e in state.log if e.level == "warning"]
        assert any(t.startswith("Connection lost") for t in texts), texts

    await host_process(port)
    for guest in guests:
        guest.retry()
    for guest in guests:
        state = await until(
            guest.store,
            lambda s: _connection(s) is ConnectionState.CONNECTED and _guest_ids(s) == everyone,
        )
        assert state.guest is not None
        assert state.guest.ended is None
        assert [m.name for m in state.guest.members.values() if m.is_host] == ["Grace"]
