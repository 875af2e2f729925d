"""Checking that listed hosts still answer: the TCP probe on loopback, the monitor's rules
(one probe per session, only advertised addresses, flips both ways) and the store.

The monitor hears what the browser reports (`seen`, `lost`, `watch`); here each report
reaches the store as well, as the app's listener makes it, and the monitor's results go
back through that listener, so the tests read them from the store."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from loudsync_tui.net.discovery import ProbeOptions, ReachabilityMonitor, answers
from loudsync_tui.store import AppStore, DiscoveredSession
from loudsync_tui.tui.format import session_cells
from loudsync_tui.tui.services import store_listener
from tests.support.waiting import eventually, until, within

FAST = ProbeOptions(interval=0.05, timeout=0.2)


def session(
    key: str = "s1", port: int = 9000, addresses: tuple[str, ...] = ("127.0.0.1",)
) -> DiscoveredSession:
    return DiscoveredSession(
        key=key,
        session_id=f"id-{key}",
        name=f"Room {key}",
        host_name="Grace",
        addresses=addresses,
        port=port,
        members=1,
        max_members=10,
        protocol_version=1,
        joinable=True,
        encrypted=True,
    )


@pytest.fixture
async def listening() -> AsyncIterator[int]:
    """A loopback port where something accepts connections."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on: a connect is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback listener whose accept queue is full, so a new connect gets no answer at
    all (its SYN is dropped), as from a host that lost power."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(4):  # the kernel takes backlog + 1; more leaves a spare
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


# The probe ---------------------------------------------------------------------------


async def test_a_listening_port_answers(listening: int) -> None:
    assert await within(answers(["127.0.0.1"], listening, 1.0), 2.0)


async def test_a_refused_connect_is_no_answer_at_once(closed_port: int) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await answers(["127.0.0.1"], closed_port, 5.0)
    assert loop.time() - started < 1.0


async def test_silence_is_no_answer_after_the_timeout(silent_port: int) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await within(answers(["127.0.0.1"], silent_port, 0.3), 2.0)
    assert loop.time() - started >= 0.25


async def test_any_advertised_address_that_answers_is_enough(listening: int) -> None:
    with socket.socket() as refused:  # 127.0.0.2 is loopback too; nothing listens there
        refused.bind(("127.0.0.2", listening))
        assert await answers(["127.0.0.2", "127.0.0.1"], listening, 1.0)
    assert not await answers(["127.0.0.2"], listening, 1.0)


async def test_names_and_odd_ports_are_never_probed(listening: int) -> None:
    """A record steers nothing but a connect to the literal IPs it advertised."""
    assert not await answers(["localhost"], listening, 1.0)
    assert not await answers([], listening, 1.0)
    assert not await answers(["127.0.0.1"], 0, 1.0)


# The monitor -------------------------------------------------------------------------


class FakeProbe:
    """Answers as told; counts calls and how many run at once per session address."""

    def __init__(self) -> None:
        self.answer = True
        self.gate = asyncio.Event()
        self.gate.set()
        self.calls: list[tuple[tuple[str, ...], int, float]] = []
        self.running: dict[int, int] = {}
        self.most_at_once = 0

    async def __call__(self, addresses: Sequence[str], port: int, within: float) -> bool:
        self.calls.append((tuple(addresses), port, within))
        self.running[port] = self.running.get(port, 0) + 1
        self.most_at_once = max(self.most_at_once, self.running[port])
        try:
            await self.gate.wait()
            return self.answer
        finally:
            self.running[port] -= 1


def seen(store: AppStore, monitor: ReachabilityMonitor, found: DiscoveredSession) -> None:
    """What the browser does when a record resolves: tell the app, and the monitor."""
    store.session_seen(found)
    monitor.seen(found)


def lost(store: AppStore, monitor: ReachabilityMonitor, key: str) -> None:
    store.session_lost(key)
    monitor.lost(key)


def watch(store: AppStore, monitor: ReachabilityMonitor, watched: bool) -> None:
    """Browse covered or shown: the store flag, and the browser told (as the app wires it)."""
    store.browse_watched(watched)
    monitor.watch(watched)


def reachable(store: AppStore, key: str) -> bool | None:
    found = store.get().discovery.sessions.get(key)
    return None if found is None else found.reachable


async def test_a_new_session_is_checked_at_once_and_then_every_interval() -> None:
    store, probe = AppStore(), FakeProbe()
    monitor = ReachabilityMonitor(
        store_listener(store).reachable, ProbeOptions(interval=60, timeout=0.2), probe
    )
    monitor.start()
    try:
        seen(store, monitor, session("s1", 9001, ("127.0.0.1", "::1")))
        await until(store, lambda s: s.discovery.sessions["s1"].reachable is True)
        # Only the addresses and port the record advertised, with the option's timeout.
        assert probe.calls == [(("127.0.0.1", "::1"), 9001, 0.2)]
    finally:
        await monitor.stop()


async def test_a_host_that_stops_answering_is_marked_and_the_mark_goes_when_it_answers() -> None:
    store, probe = AppStore(), FakeProbe()
    monitor = ReachabilityMonitor(store_listener(store).reachable, FAST, probe)
    seen(store, monitor, session())
    monitor.start()
    try:
        await until(store, lambda s: reachable(store, "s1") is True)
        probe.answer = False
        await until(store, lambda s: reachable(store, "s1") is False, timeout=2.0)
        assert "s1" in store.get().discovery.sessions  # the row stays until mDNS drops it
        probe.answer = True
        await until(store, lambda s: reachable(store, "s1") is True, timeout=2.0)
    finally:
        await monitor.stop()


async def test_at_most_one_probe_in_flight_per_session() -> None:
    store, probe = AppStore(), FakeProbe()
    probe.gate.clear()  # every probe hangs, as toward a host that lost power
    monitor = ReachabilityMonitor(
        store_listener(store).reachable, ProbeOptions(interval=0.01, timeout=5), probe
    )
    seen(store, monitor, session("a", 9001))
    seen(store, monitor, session("b", 9002))
    monitor.start()
    try:
        await eventually(lambda: monitor.in_flight == {"a", "b"})
        for n in range(3, 30):  # many ticks and store changes while they hang
            seen(store, monitor, replace(session("a", 9001), members=n))
            await asyncio.sleep(0.01)
        assert len(probe.calls) == 2
        assert probe.most_at_once == 1
        probe.gate.set()
        await until(
            store, lambda s: reachable(store, "a") is True and reachable(store, "b") is True
        )
    finally:
        await monitor.stop()


async def test_a_result_for_an_old_address_is_dropped() -> None:
    store, probe = AppStore(), FakeProbe()
    probe.gate.clear()
    monitor = ReachabilityMonitor(
        store_listener(store).reachable, ProbeOptions(interval=60, timeout=5), probe
    )
    monitor.start()
    try:
        seen(store, monitor, session("s1", 9001))
        await eventually(lambda: len(probe.calls) == 1)
        lost(store, monitor, "s1")
        seen(store, monitor, session("s1", 9002))  # moved while the probe hung
        probe.answer = False
        probe.gate.set()
        await eventually(lambda: not monitor.in_flight)
        await until(store, lambda s: reachable(store, "s1") is False)
        assert [port for _, port, _ in probe.calls] == [9001, 9002]
    finally:
        await monitor.stop()


async def test_stop_cancels_the_probes_in_flight() -> None:
    store, probe = AppStore(), FakeProbe()
    probe.gate.clear()
    monitor = ReachabilityMonitor(store_listener(store).reachable, FAST, probe)
    seen(store, monitor, session())
    monitor.start()
    await eventually(lambda: monitor.in_flight == {"s1"})
    await within(monitor.stop(), 1.0)
    assert not monitor.in_flight
    assert probe.running[9000] == 0
    assert reachable(store, "s1") is None


async def test_checks_pause_while_the_list_is_off_screen_and_resume_at_once() -> None:
    store, probe = AppStore(), FakeProbe()
    probe.gate.clear()
    monitor = ReachabilityMonitor(
        store_listener(store).reachable, ProbeOptions(interval=60, timeout=5), probe
    )
    seen(store, monitor, session())
    monitor.start()
    try:
        await eventually(lambda: monitor.in_flight == {"s1"})
        watch(store, monitor, False)  # another screen covers Browse
        await eventually(lambda: not monitor.checking and not monitor.in_flight)
        seen(store, monitor, session("s2", 9002))
        await asyncio.sleep(0)  # let the store notify (nothing must start)
        store.flush()
        assert not monitor.in_flight
        assert len(probe.calls) == 1
        probe.gate.set()
        watch(store, monitor, True)  # back on screen: everything is checked now, not later
        await until(
            store, lambda s: reachable(store, "s1") is True and reachable(store, "s2") is True
        )
    finally:
        await monitor.stop()


async def test_the_monitor_with_the_real_probe_on_loopback(
    listening: int, closed_port: int
) -> None:
    store = AppStore()
    monitor = ReachabilityMonitor(store_listener(store).reachable, FAST)
    seen(store, monitor, session("up", listening))
    seen(store, monitor, session("down", closed_port))
    monitor.start()
    try:
        await until(
            store, lambda s: reachable(store, "up") is True and reachable(store, "down") is False
        )
    finally:
        await monitor.stop()


async def test_a_rival_row_is_checked_at_its_own_address() -> None:
    """Another machine announcing under a listed name gets a row of its own in the store;
    the monitor keeps the list the same way, so each row is checked where it points."""
    store, probe = AppStore(), FakeProbe()
    monitor = ReachabilityMonitor(
        store_listener(store).reachable, ProbeOptions(interval=60, timeout=0.2), probe
    )
    monitor.start()
    try:
        seen(store, monitor, session("s1", 9001))
        await until(store, lambda s: reachable(store, "s1") is True)
        probe.answer = False
        seen(store, monitor, session("s1", 9002, ("127.0.0.2",)))
        rival = "s1 @ 127.0.0.2:9002"
        await until(store, lambda s: reachable(store, rival) is False)
        assert reachable(store, "s1") is True
        assert [(a, port) for a, port, _ in probe.calls] == [
            (("127.0.0.1",), 9001),
            (("127.0.0.2",), 9002),
        ]
    finally:
        await monitor.stop()


def test_the_app_listener_turns_each_report_into_a_store_action() -> None:
    store = AppStore()
    listener = store_listener(store)
    listener.failed("no multicast")
    assert store.get().discovery.error == "no multicast"
    listener.started()
    assert (store.get().discovery.browsing, store.get().discovery.error) == (True, None)
    listener.seen(session("a"))
    listener.seen(session("b", 9002))
    listener.reachable("a", False)
    assert reachable(store, "a") is False
    listener.lost("a")
    assert list(store.get().discovery.sessions) == ["b"]
    listener.cleared()
    assert not store.get().discovery.sessions
    listener.stopped()
    assert not store.get().discovery.browsing


# The store and the row -----------------------------------------------------------------


def test_a_txt_update_keeps_the_last_check_and_a_move_forgets_it() -> None:
    store = AppStore()
    store.session_seen(session())
    store.session_reachable("s1", False)
    store.session_seen(replace(session(), members=3))  # a new member count: same place
    assert reachable(store, "s1") is False
    store.session_seen(session(port=9100))  # another port under the same name: a rival row
    assert reachable(store, "s1") is False
    store.session_lost("s1")
    store.session_seen(session(port=9100))
    assert reachable(store, "s1") is None


def test_a_check_of_an_unknown_session_changes_nothing() -> None:
    store = AppStore()
    before = store.get()
    store.session_reachable("ghost", True)
    assert store.get() is before


def test_an_unreachable_row_is_dimmed_and_says_so() -> None:
    cells = session_cells(replace(session(), reachable=False))
    assert str(cells[-1]) == "unreachable"
    assert all(str(getattr(cell, "style", "")) == "dim" for cell in cells[:-1])
    assert str(session_cells(replace(session(), reachable=True))[-1]) == "ok"
    assert str(session_cells(session())[-1]) == "ok"  # not checked yet: no mark
    contested = session_cells(replace(session(), reachable=False), contested=True)
    assert str(contested[-1]) == "⚠ rival unreachable"


def test_the_probe_options_come_from_the_command_line(tmp_path: Path) -> None:
    from loudsync_tui.cli import build_parser
    from loudsync_tui.tui.settings import settings_from_args

    config = ["--config-dir", str(tmp_path)]
    args = build_parser().parse_args(
        [*config, "--probe-interval", "0.5", "--probe-timeout", "0.25"]
    )
    assert settings_from_args(args).probe == ProbeOptions(interval=0.5, timeout=0.25)
    assert settings_from_args(build_parser().parse_args(config)).probe == ProbeOptions()
    discover = build_parser().parse_args(["discover", "--probe-timeout", "0.3"])
    assert discover.probe_timeout == 0.3
