"""Browsing the LAN's sessions over mDNS/DNS-SD, reported through callbacks.

A thin adapter over python-zeroconf's asyncio API: zeroconf does the asking and caching;
this module resolves each service in a task of its own, turns the record into a
`DiscoveredSession` (`records`) and tells a `DiscoveryListener`. It holds no state of the
app's: the app wires the listener to store actions, `discover_once` to a dict. Everything
runs on the caller's asyncio loop, so the listener is never called from another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Protocol

from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from loudsync_tui.net.discovery.interfaces import (
    QUESTION_TYPE,
    DiscoveryUnavailable,
    open_zeroconf,
)
from loudsync_tui.net.discovery.reachability import (
    DEFAULT_PROBE,
    ProbeOptions,
    ReachabilityMonitor,
)
from loudsync_tui.net.discovery.records import SERVICE_TYPE, instance_of, session_from_record
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.store import DiscoveredSession, listed, unlisted

RESOLVE_TIMEOUT_MS: Final = 3000

log = logging.getLogger(__name__)


class DiscoveryListener(Protocol):
    """What a `SessionBrowser` reports; sessions are keyed by their mDNS instance name."""

    def started(self) -> None:
        """Browsing runs."""

    def stopped(self) -> None:
        """Browsing ended (`stop`)."""

    def failed(self, error: str) -> None:
        """Browsing cannot run here; `error` says why, for a person."""

    def seen(self, session: DiscoveredSession) -> None:
        """A session appeared, or its record changed."""

    def lost(self, key: str) -> None:
        """The mDNS name `key` is gone (a goodbye, an expired or garbled record)."""

    def cleared(self) -> None:
        """Forget every session: a rescan asks the LAN afresh."""

    def reachable(self, key: str, reachable: bool) -> None:
        """A TCP check of the listed session `key` succeeded (True) or not (False)."""


def session_from_service(key: str, info: AsyncServiceInfo) -> DiscoveredSession | None:
    """A resolved record as a `DiscoveredSession`, or None if its TXT is missing or garbled."""
    return session_from_record(
        key, info.decoded_properties, info.parsed_scoped_addresses(), info.port
    )


class SessionBrowser:
    """Tells `listener` of the LAN's sessions while it runs; never raises into the app.

    While browsing it also checks that each listed host still answers (see
    `reachability`), unless `probe` is None: mDNS alone keeps a host that died without a
    goodbye listed for minutes. Checks run only while the list is watched (`watch`).
    """

    def __init__(
        self,
        listener: DiscoveryListener,
        interfaces: Sequence[str] = (),
        probe: ProbeOptions | None = DEFAULT_PROBE,
    ) -> None:
        self._listener = listener
        self._interfaces = tuple(interfaces)
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._tasks = TaskOwner("mDNS browser")  # one resolving task per service name
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._monitor = None if probe is None else ReachabilityMonitor(listener.reachable, probe)

    def watch(self, watched: bool) -> None:
        """Whether the list is on screen; listed hosts are checked for an answer only then."""
        if self._monitor is not None:
            self._monitor.watch(watched)

    async def start(self) -> None:
        if self._aiozc is not None:
            return
        try:
            aiozc, _ = await open_zeroconf(self._interfaces)
        except DiscoveryUnavailable as exc:
            self._listener.failed(str(exc))
            return
        except Exception as exc:
            log.exception("mDNS: browsing could not start")
            self._listener.failed(f"browsing could not start: {exc}")
            return
        self._aiozc = aiozc
        self._listener.started()
        self._browser = AsyncServiceBrowser(
            aiozc.zeroconf,
            SERVICE_TYPE,
            handlers=[self._on_change],
            question_type=QUESTION_TYPE,
        )
        if self._monitor is not None:
            self._monitor.start()

    async def rescan(self) -> None:
        """Forget every session and ask the LAN afresh (a new cache drops silent leavers)."""
        await self.stop()
        self._listener.cleared()
        if self._monitor is not None:
            self._monitor.cleared()
        await self.start()

    async def stop(self) -> None:
        aiozc, browser = self._aiozc, self._browser
        self._aiozc = self._browser = None
        if self._monitor is not None:
            await self._monitor.stop()
        self._resolving.clear()
        self._tasks.cancel()  # not closed: a rescan starts browsing again
        await self._tasks.wait(RESOLVE_TIMEOUT_MS / 1000)
        try:
            if browser is not None:
                await browser.async_cancel()
            if aiozc is not None:
                await aiozc.async_close()
        except Exception:
            log.exception("mDNS: closing the browser failed")
        self._listener.stopped()

    def _seen(self, session: DiscoveredSession) -> None:
        self._listener.seen(session)
        if self._monitor is not None:
            self._monitor.seen(session)

    def _lost(self, key: str) -> None:
        self._listener.lost(key)
        if self._monitor is not None:
            self._monitor.lost(key)

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        """Called by zeroconf on our loop; resolving happens in a task per service."""
        if self._aiozc is None:
            return  # stopped: nothing more is reported
        key = instance_of(name)
        previous = self._resolving.pop(name, None)
        if previous is not None:
            previous.cancel()
        if state_change is ServiceStateChange.Removed:
            self._lost(key)
            return
        task = self._tasks.spawn(
            self._resolve(zeroconf, service_type, name, key), name=f"resolve {name}"
        )
        self._resolving[name] = task
        task.add_done_callback(lambda done: self._forget(name, done))

    def _forget(self, name: str, task: asyncio.Task[None]) -> None:
        if self._resolving.get(name) is task:
            del self._resolving[name]

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str, key: str) -> None:
        info = AsyncServiceInfo(service_type, name)
        try:
            found = await info.async_request(
                zeroconf, RESOLVE_TIMEOUT_MS, question_type=QUESTION_TYPE
            )
            session = session_from_service(key, info) if found else None
        except Exception:  # one odd record must not take discovery down
            log.exception("mDNS: resolving %s failed", name)
            return
        if not found:
            log.debug("mDNS: %s did not answer in time", name)
        elif session is None:
            log.debug("mDNS: ignoring %s: missing or garbled TXT %r", name, info.properties)
            self._lost(key)
        else:
            self._seen(session)


class _Collected:
    """A `DiscoveryListener` that keeps the list as the store would, for `discover_once`."""

    def __init__(self, on_found: Callable[[DiscoveredSession], None] | None) -> None:
        self.sessions: Mapping[str, DiscoveredSession] = {}
        self.error: str | None = None
        self._on_found = on_found
        self._announced: set[str] = set()

    def started(self) -> None:
        self.error = None

    def stopped(self) -> None:
        pass

    def failed(self, error: str) -> None:
        self.error = error

    def seen(self, session: DiscoveredSession) -> None:
        self.sessions = listed(self.sessions, session)
        for key in self.sessions.keys() - self._announced:
            self._announced.add(key)
            if self._on_found is not None:
                self._on_found(self.sessions[key])

    def lost(self, key: str) -> None:
        self.sessions = unlisted(self.sessions, key)

    def cleared(self) -> None:
        self.sessions = {}

    def reachable(self, key: str, reachable: bool) -> None:
        pass  # discover_once does not probe; its caller checks each session it hears of


async def discover_once(
    timeout: float,  # noqa: ASYNC109 - a listening window, not a deadline to cancel at
    interfaces: Sequence[str] = (),
    *,
    on_found: Callable[[DiscoveredSession], None] | None = None,
    stop: asyncio.Event | None = None,
) -> list[DiscoveredSession]:
    """Browse for `timeout` seconds (or until `stop` is set) and return the sessions
    present at the end, by name; `on_found` hears of each session as it first appears,
    so a script reading the output need not wait for the window to close."""
    collected = _Collected(on_found)
    browser = SessionBrowser(collected, interfaces, probe=None)
    await browser.start()
    try:
        if collected.error is not None:
            raise DiscoveryUnavailable(collected.error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((stop or asyncio.Event()).wait(), timeout)
    finally:
        await browser.stop()
    sessions = collected.sessions.values()
    return sorted(sessions, key=lambda s: (s.name.casefold(), s.key))
