"""The network services the app starts, behind factories so tests can swap them.

The app is the only place that holds a service; screens ask the app for commands
(kick, stop, leave, ...), which it passes to the running service. The
discovery browser reports through callbacks; `store_listener` turns them into store
actions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from loudsync_tui.config import GuestConfig, HostConfig, OutputConfig, PlaybackConfig
from loudsync_tui.net.discovery import ProbeOptions
from loudsync_tui.store import AppStore, DiscoveredSession

if TYPE_CHECKING:
    from loudsync_tui.net.discovery import DiscoveryListener


class HostRunner(Protocol):
    async def start(self) -> None: ...

    async def aclose(self, reason: str = ...) -> None: ...

    def kick(self, member_id: str, *, ban_address: bool = False) -> None: ...

    def lift_ban(self, key: str) -> None: ...

    def set_pin(self, pin: str | None) -> None:
        """A new PIN for joins from now on ("" generates one, None removes it)."""
        ...

    def stop(self) -> None:
        """Close the session soon (SESSION_CLOSED to every guest); `aclose` waits for it."""
        ...

    async def add_music(self, paths: Sequence[str]) -> None:
        """Files, folders or "system" at the end of the queue (problems go to the log)."""
        ...

    def control(self, action: str, seconds: float = 0.0, by: str | None = None) -> str | None:
        """play, pause, toggle, seek, next, prev; returns why it cannot, None if done."""
        ...

    def remove_track(self, index: int) -> None: ...

    def set_loop(self, loop: bool) -> None: ...

    def set_output(
        self, member_id: str, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None: ...

    def set_dj(self, member_id: str, dj: bool) -> None: ...


class GuestRunner(Protocol):
    def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def wait_ended(self) -> object: ...

    def leave(self) -> None: ...

    def retry(self) -> None:
        """Try again after the link has FAILED."""
        ...

    def control(self, action: str, seconds: float = 0.0) -> None:
        """A DJ's play, pause, seek, next, prev (the host refuses anyone else's)."""
        ...

    def set_local_output(
        self, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None: ...


class BrowserRunner(Protocol):
    async def start(self) -> None: ...

    async def rescan(self) -> None: ...

    async def stop(self) -> None: ...


HostFactory = Callable[[HostConfig, AppStore], HostRunner]
GuestFactory = Callable[[GuestConfig, AppStore], GuestRunner]
BrowserFactory = Callable[[AppStore, tuple[str, ...], ProbeOptions], BrowserRunner]


@dataclass(frozen=True, slots=True)
class Services:
    host: HostFactory
    guest: GuestFactory
    browser: BrowserFactory | None
    """None: no LAN discovery (tests, or a machine without multicast)."""


class _StoreListener:
    """The browser's reports as store actions."""

    def __init__(self, store: AppStore) -> None:
        self._store = store

    def started(self) -> None:
        self._store.discovery_started()

    def stopped(self) -> None:
        self._store.discovery_stopped()

    def failed(self, error: str) -> None:
        self._store.discovery_failed(error)

    def seen(self, session: DiscoveredSession) -> None:
        self._store.session_seen(session)

    def lost(self, key: str) -> None:
        self._store.session_lost(key)

    def cleared(self) -> None:
        self._store.sessions_cleared()

    def reachable(self, key: str, reachable: bool) -> None:
        self._store.session_reachable(key, reachable)


def store_listener(store: AppStore) -> DiscoveryListener:
    """A `DiscoveryListener` that keeps `store`'s discovered sessions in step."""
    return _StoreListener(store)


def _browser(store: AppStore, interfaces: tuple[str, ...], probe: ProbeOptions) -> BrowserRunner:
    """Imported on first use, so starting the app never pays for zeroconf twice. Hosts are
    checked for an answer only while Browse is on screen (`discovery.watched`)."""
    from loudsync_tui.net.discovery import SessionBrowser

    browser = SessionBrowser(store_listener(store), interfaces, probe)
    store.subscribe(lambda watched, _old: browser.watch(watched), lambda s: s.discovery.watched)
    browser.watch(store.get().discovery.watched)
    return browser


def default_services(
    playback: PlaybackConfig | None = None,
    output: OutputConfig | None = None,
    remember_in: str | None = None,
) -> Services:
    """The real services; the app's sound settings go to each session it starts."""
    playing = playback or PlaybackConfig()
    speakers = output or OutputConfig(enabled=False)
    directory = None if remember_in is None else Path(remember_in)

    def host(config: HostConfig, store: AppStore) -> HostRunner:
        from loudsync_tui.net.host_service import HostService

        return HostService(config, store, playback=playing, output=speakers)

    def guest(config: GuestConfig, store: AppStore) -> GuestRunner:
        from loudsync_tui.net.guest_service import GuestService

        return GuestService(config, store, output=speakers, remember_in=directory)

    return Services(host=host, guest=guest, browser=_browser)
