"""Whether a listed host still answers: a TCP connect to the address and port it advertised.

A host that dies without an mDNS goodbye (killed, power lost, cable pulled) stays in
every browser's cache until its records expire, about two minutes. A cheap connect,
opened and closed at once with no byte sent, tells within seconds that nobody listens
there any more. To keep a hostile or crowded LAN from turning this into a storm, probes
go only to the IP addresses a record advertised (a few at most), there is at most one
probe in flight per session, and only a bounded number in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.store import DiscoveredSession, listed, unlisted

PROBE_INTERVAL: Final = 3.0
"""Seconds between two checks of one session; with the timeout, a dead host is marked
well within 10 s."""

PROBE_TIMEOUT: Final = 1.5
"""Seconds a connect may take; a LAN host answers in milliseconds."""

MAX_ADDRESSES: Final = 4
"""Advertised addresses tried per probe; a record may list any number."""

MAX_IN_FLIGHT: Final = 16
"""Probes running at once over all sessions."""

log = logging.getLogger(__name__)

Probe = Callable[[Sequence[str], int, float], Awaitable[bool]]
"""`probe(addresses, port, timeout)`: whether anything listens there."""


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """How often listed sessions are checked and how long a check may take (seconds)."""

    interval: float = PROBE_INTERVAL
    timeout: float = PROBE_TIMEOUT


DEFAULT_PROBE: Final = ProbeOptions()


def _is_ip(address: str) -> bool:
    """Only literal IPs are probed: a name would cost a DNS lookup a record could steer."""
    try:
        ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    return True


async def _connects(address: str, port: int, within: float) -> bool:
    try:
        async with asyncio.timeout(within):
            _, writer = await asyncio.open_connection(address, port)
    except (OSError, TimeoutError):  # refused, no route, or silence
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def answers(addresses: Sequence[str], port: int, within: float) -> bool:
    """Whether a TCP connection to `port` on any of the first few `addresses` opens
    within `within` seconds; the first that opens ends the probe."""
    targets = [a for a in dict.fromkeys(addresses) if _is_ip(a)][:MAX_ADDRESSES]
    if not targets or not 0 < port < 65536:
        return False
    tasks = TaskOwner("reachability probe")
    tries = [tasks.spawn(_connects(a, port, within)) for a in targets]
    try:
        for attempt in asyncio.as_completed(tries):
            if await attempt:
                return True
        return False
    finally:
        await tasks.aclose()  # the connects still trying are no longer wanted


class ReachabilityMonitor:
    """Keeps track of whether every listed session still answers while it runs.

    It is fed what the browser reports (`seen`, `lost`, `cleared`) and keeps the list as
    the store does (`listed`), rival rows included. A session is checked as soon as it is
    listed (or its address changes), then every `options.interval` seconds; each result
    goes out through `report(key, reachable)`. Checks pause while the list is off screen
    (`watch(False)`) and resume, at once, with it.
    """

    def __init__(
        self,
        report: Callable[[str, bool], None],
        options: ProbeOptions = DEFAULT_PROBE,
        probe: Probe = answers,
    ) -> None:
        self._report = report
        self._options = options
        self._probe = probe
        self._sessions: Mapping[str, DiscoveredSession] = {}
        self._watched = True
        self._running = False
        self._in_flight: dict[str, asyncio.Task[bool]] = {}
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._tasks = TaskOwner("reachability monitor")  # the ticker and the probes in flight
        self._ticker: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> frozenset[str]:
        """The keys of the sessions being checked right now."""
        return frozenset(self._in_flight)

    @property
    def checking(self) -> bool:
        return self._ticker is not None

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        self.watch(self._watched)

    async def stop(self) -> None:
        self._running = False
        self._pause()
        await self._tasks.wait(self._options.timeout)  # not closed: `start` may come again

    def watch(self, watched: bool) -> None:
        """The list came on screen (True) or went under another screen (False)."""
        self._watched = watched
        if not watched or not self._running:
            self._pause()
        elif self._ticker is None:
            self._ticker = self._tasks.spawn(self._tick(), name="reachability-ticks")

    def seen(self, session: DiscoveredSession) -> None:
        self._changed(listed(self._sessions, session))

    def lost(self, key: str) -> None:
        self._changed(unlisted(self._sessions, key))

    def cleared(self) -> None:
        self._sessions = {}

    def _changed(self, sessions: Mapping[str, DiscoveredSession]) -> None:
        if sessions is self._sessions:
            return
        self._sessions = sessions
        for key, session in sessions.items():
            if session.reachable is None:
                self._check(key)

    def _pause(self) -> None:
        """Cancel the ticker and every probe in flight (`stop` awaits them)."""
        self._ticker = None
        self._in_flight.clear()
        self._tasks.cancel()

    async def _tick(self) -> None:
        while True:
            for key in list(self._sessions):
                self._check(key)
            await asyncio.sleep(self._options.interval)

    def _check(self, key: str) -> None:
        if key in self._in_flight or self._ticker is None:
            return
        task = self._tasks.spawn(self._check_one(key), name=f"probe {key}")
        self._in_flight[key] = task

        def done(_: asyncio.Task[bool]) -> None:
            if self._in_flight.get(key) is task:
                del self._in_flight[key]
                if not task.cancelled() and task.exception() is None and task.result():
                    self._check(key)  # it moved while we asked: ask the new place now

        task.add_done_callback(done)

    async def _check_one(self, key: str) -> bool:
        """Probe one session and report; True if it moved meanwhile (ask again)."""
        session = self._sessions.get(key)
        if session is None:
            return False
        try:
            async with self._slots:
                ok = await self._probe(session.addresses, session.port, self._options.timeout)
        except Exception:  # a probe must never take discovery down
            log.exception("checking %r failed", key)
            return False
        now = self._sessions.get(key)
        if now is None:
            return False
        if (now.addresses, now.port) != (session.addresses, session.port):
            return True
        if now.reachable is not ok:
            log.info("%r at port %d %s", key, now.port, "answers" if ok else "does not answer")
            self._sessions = {**self._sessions, key: replace(now, reachable=ok)}
        self._report(key, ok)
        return False
