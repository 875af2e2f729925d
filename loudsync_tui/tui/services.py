"""The network services the app starts, behind factories so tests can swap them.

The app is the only place that holds a service; screens only call store actions,
which the store forwards to the controller the running service registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.net.reachability import ProbeOptions
from loudsync_tui.store import AppStore


class HostRunner(Protocol):
    async def start(self) -> None: ...

    async def aclose(self, reason: str = ...) -> None: ...


class GuestRunner(Protocol):
    def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def wait_ended(self) -> object: ...


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


def _host(config: HostConfig, store: AppStore) -> HostRunner:
    from loudsync_tui.net.host_service import HostService

    return HostService(config, store)


def _guest(config: GuestConfig, store: AppStore) -> GuestRunner:
    from loudsync_tui.net.guest_service import GuestService

    return GuestService(config, store)


def _browser(store: AppStore, interfaces: tuple[str, ...], probe: ProbeOptions) -> BrowserRunner:
    """Imported on first use, so starting the app never pays for zeroconf twice."""
    from loudsync_tui.net.discovery import SessionBrowser

    return SessionBrowser(store, interfaces, probe)


def default_services() -> Services:
    return Services(host=_host, guest=_guest, browser=_browser)
