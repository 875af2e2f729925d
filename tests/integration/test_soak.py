"""Soak: 200 guests join, leave, drop abruptly and resume at random for a fixed time.

Short by default (CI); `LOUDSYNC_SOAK_SECONDS=120 pytest tests/integration/test_soak.py`
runs longer, `LOUDSYNC_SOAK_SEED` picks another (still fixed) sequence. At the end every
guest sees the host's member list, and nothing leaked: tasks, file descriptors (sockets
included) and the host's memory are back where they started.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import sys
import time
from dataclasses import replace

import pytest

from loudsync_tui.config import GuestConfig
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService
from loudsync_tui.store import AppState, AppStore, ConnectionState
from tests.integration.conftest import FAST_HOST
from tests.support.proxy import LinkProxy
from tests.support.waiting import eventually

SOAK_SECONDS = float(os.environ.get("LOUDSYNC_SOAK_SECONDS", "8"))
SEED = int(os.environ.get("LOUDSYNC_SOAK_SEED", "20240606"))
GUESTS = 200
PROXIED = 50
"""Slots 0..49 go through one LinkProxy, so a `cut` drops 50 links at once."""
BLOCK_TOLERANCE = 20_000
"""Python objects (allocated blocks, `sys.getallocatedblocks`) the host process may hold
after the soak beyond the warmed-up start, all guests gone and garbage collected.

Counted, not traced, so the soak runs at full speed. Legitimately held: the host's
event log, capped at 500 entries of three or four blocks each, and caches that settle
after the warm-up. Each connection's object graph (host and guest side) is thousands of
blocks and the soak makes hundreds of connections, so one leaked connection, guest,
task or store per join or drop, or a leak of 20 objects per connection, exceeds this;
the test prints the figure.
"""


Snapshot = dict[str, tuple[str, str, bool]]


def _fds() -> tuple[int, int]:
    """(open file descriptors, of which sockets) of this process."""
    names = os.listdir("/proc/self/fd")
    sockets = 0
    for name in names:
        with contextlib.suppress(OSError):  # the listing's own descriptor, already closed
            sockets += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
    return len(names), sockets


def _members(state: AppState) -> Snapshot:
    """What a guest shows: id -> (name, status, is_host); latency is left out on purpose
    (guests hear of it only when it moves by more than 20% and 5 ms)."""
    if state.guest is None:
        return {}
    return {m.id: (m.name, m.status, m.is_host) for m in state.guest.members.values()}


def _host_members(host: HostService) -> Snapshot:
    hosting = host.store.get().hosting
    if hosting is None:
        return {}
    return {m.id: (m.name, m.status, m.is_host) for m in hosting.members.values()}


def _abort(guest: GuestService) -> bool:
    """Drop the guest's link abruptly (no close frame), as a pulled cable would."""
    ws = guest._ws
    if ws is None:
        return False
    ws.transport.abort()
    return True


class Soak:
    def __init__(self, host: HostService, proxy: LinkProxy, rng: random.Random) -> None:
        self.host = host
        self.proxy = proxy
        self.rng = rng
        self.slots: list[GuestService | None] = [None] * GUESTS
        self.generation = [0] * GUESTS
        self.leaving: set[asyncio.Task[None]] = set()
        self.counts = {"join": 0, "leave": 0, "drop": 0, "cut": 0, "retry": 0, "refused": 0}

    def join(self, slot: int) -> GuestService:
        self.generation[slot] += 1
        port = self.proxy.port if slot < PROXIED else self.host.port
        config = GuestConfig(
            address=f"127.0.0.1:{port}",
            name=f"Guest {slot}",
            device_id=f"soak-{slot}-{self.generation[slot]}",
            session_id="sess1",
            connect_timeout=3.0,
            reconnect_attempts=8,
            reconnect_delay=0.1,
            clock_burst=0,  # churn is the point here; the clock burst is tested elsewhere
        )
        guest = GuestService(config, AppStore(), rng=random.Random(self.rng.random()))
        guest.start()
        self.slots[slot] = guest
        self.counts["join"] += 1
        return guest

    def leave(self, slot: int) -> None:
        guest = self.slots[slot]
        assert guest is not None
        self.slots[slot] = None
        task = asyncio.create_task(guest.aclose())
        self.leaving.add(task)
        task.add_done_callback(self.leaving.discard)
        self.counts["leave"] += 1

    def live(self) -> list[GuestService]:
        return [g for g in self.slots if g is not None]

    async def step(self) -> None:
        rng = self.rng
        self.retry_failed()
        action = rng.choices(["join", "leave", "drop"], weights=[30, 25, 45])[0]
        taken = [i for i, g in enumerate(self.slots) if g is not None]
        free = [i for i, g in enumerate(self.slots) if g is None]
        if action == "join" and free:
            self.join(rng.choice(free))
        elif action == "leave" and taken:
            self.leave(rng.choice(taken))
        elif action == "drop" and taken:
            guest = self.slots[rng.choice(taken)]
            if guest is not None and _abort(guest):
                self.counts["drop"] += 1
        await asyncio.sleep(rng.uniform(0, 0.01))  # random pacing between actions

    def retry_failed(self) -> None:
        """Do what a person would for guests that gave up or were turned away.

        A link cut before the first WELCOME leaves the guest no token to resume with, so it
        fails at once: press `r`. If the host had admitted it already, the retry (without a
        token) is refused ALREADY_JOINED until the held place expires: that guest is done
        (its slot empties; the host drops the place after heartbeat_timeout).
        """
        for slot, guest in enumerate(self.slots):
            if guest is None:
                continue
            state = guest.store.get().guest
            if guest.end is not None:
                assert guest.end.code == "refused", guest.end
                assert "is already in the session" in guest.end.reason, guest.end  # ALREADY_JOINED
                self.leave(slot)
                self.counts["refused"] += 1
            elif state is not None and state.connection is ConnectionState.FAILED:
                guest.retry()
                self.counts["retry"] += 1

    def cut(self) -> None:
        """Drop every proxied link at once (slots below PROXIED), as a switch going down."""
        self.proxy.cut()
        self.counts["cut"] += 1

    def diagnose(self) -> str:
        """Why the soak has not converged: the first differences, for the failure message."""
        host_view = _host_members(self.host)
        expected = {"host-grace"} | {g.config.device_id for g in self.live()}
        lines = [
            f"host has {len(host_view)}, expected {len(expected)}",
            f"missing at host {sorted(expected - set(host_view))[:5]}",
            f"extra at host {[(k, host_view[k]) for k in sorted(set(host_view) - expected)][:5]}",
            f"not connected at host {[k for k, v in host_view.items() if v[1] != 'connected'][:5]}",
        ]
        for g in self.live():
            state = g.store.get()
            view = _members(state)
            if view != host_view or state.guest is None or state.guest.connection != "connected":
                diff = {k: (view.get(k), host_view.get(k)) for k in set(view) ^ set(host_view)}
                diff |= {
                    k: (view[k], host_view[k])
                    for k in set(view) & set(host_view)
                    if view[k] != host_view[k]
                }
                conn = state.guest.connection if state.guest else None
                failure = g.core.failure if g.core else None
                shown = dict(list(diff.items())[:4])
                lines.append(f"{g.config.device_id} {conn} end={g.end} {failure=} diff={shown}")
                if len(lines) > 15:
                    break
        return "\n".join(lines)

    async def settle(self, timeout: float) -> None:
        try:
            await eventually(self.converged, timeout=timeout, every=0.1)
        except AssertionError:
            raise AssertionError(f"not converged in {timeout}s:\n{self.diagnose()}") from None

    def converged(self) -> bool:
        self.retry_failed()
        live = self.live()
        expected = {"host-grace"} | {g.config.device_id for g in live}
        host_view = _host_members(self.host)
        if set(host_view) != expected:
            return False
        if any(status != "connected" for _, status, _ in host_view.values()):
            return False
        states = [g.store.get().guest for g in live]
        if not all(
            s is not None
            and s.connection is ConnectionState.CONNECTED
            and len(s.members) == len(host_view)
            for s in states
        ):
            return False  # cheap checks first: this runs often while 200 guests work
        return all(_members(g.store.get()) == host_view for g in live)


@pytest.mark.timeout(SOAK_SECONDS * 2 + 120)
async def test_two_hundred_guests_churn_and_converge_without_leaks() -> None:
    loop = asyncio.get_running_loop()
    tasks_before = asyncio.all_tasks()
    fds_before = _fds()
    config = replace(
        FAST_HOST,
        max_members=2 * GUESTS,  # room for places held for guests that dropped, then left
        heartbeat_interval=1.0,
        heartbeat_timeout=3.0,
        join_timeout=3.0,
    )
    host = HostService(config, AppStore())
    await host.start()
    proxy = await LinkProxy(host.port).start()
    rng = random.Random(SEED)
    soak = Soak(host, proxy, rng)
    phases: dict[str, float] = {}
    mark = time.monotonic()
    try:
        # Warm-up: every path once (join, drop and resume, leave) before the baseline.
        warm = [soak.join(i) for i in range(0, GUESTS, 4)]
        await soak.settle(20)
        for guest in warm[::2]:
            _abort(guest)
        await soak.settle(20)
        for i in range(0, GUESTS, 4):
            soak.leave(i)
        await eventually(
            lambda: not soak.leaving and len(_host_members(host)) == 1, timeout=10, every=0.1
        )
        del warm
        gc.collect()
        blocks_before = sys.getallocatedblocks()
        phases["warm-up"] = time.monotonic() - mark
        mark = time.monotonic()

        for slot in range(GUESTS):
            soak.join(slot)
        await soak.settle(30)
        phases["join 200"] = time.monotonic() - mark
        started = loop.time()
        next_cut = started + rng.uniform(1, 3)
        steps = 0
        while loop.time() - started < SOAK_SECONDS:
            await soak.step()
            steps += 1
            if loop.time() >= next_cut:
                soak.cut()
                next_cut += rng.uniform(1, 3)
        settle = time.monotonic()
        await eventually(lambda: not soak.leaving, timeout=10)
        # Held places of guests that left mid-reconnect expire after heartbeat_timeout.
        await soak.settle(config.heartbeat_timeout + 15)
        phases["converge"] = time.monotonic() - settle
        live = len(soak.live())
        assert live > 0
        assert soak.counts["drop"] > 0
        assert soak.counts["leave"] > 0
        assert soak.counts["cut"] > 0 or SOAK_SECONDS < 3

        for slot, occupant in enumerate(soak.slots):
            if occupant is not None:
                soak.leave(slot)
        await eventually(lambda: not soak.leaving, timeout=10)
        await eventually(
            lambda: (
                len(_host_members(host)) == 1
                and host.core.connection_count == 0
                and host.server.unsent_bytes() == {}
            ),
            timeout=10,
        )
        gc.collect()
        grown = sys.getallocatedblocks() - blocks_before
        timings = ", ".join(f"{k} {v:.1f}s" for k, v in phases.items())
        print(
            f"\nsoak: {SOAK_SECONDS:g}s seed {SEED}, {steps} steps {soak.counts}, "
            f"{live} live at the end, phases {timings}, "
            f"allocated blocks {blocks_before} -> {blocks_before + grown} ({grown:+d})"
        )
        assert grown < BLOCK_TOLERANCE, f"{grown} more allocated blocks than at the start"
    finally:
        for slot, occupant in enumerate(soak.slots):
            if occupant is not None:
                soak.leave(slot)
        if soak.leaving:
            await asyncio.wait(set(soak.leaving), timeout=10)
        await proxy.close()
        await host.aclose()
    await eventually(lambda: asyncio.all_tasks() == tasks_before, timeout=10)
    await eventually(lambda: _fds() == fds_before, timeout=10)
