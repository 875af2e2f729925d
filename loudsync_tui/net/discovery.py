"""LAN discovery over mDNS/DNS-SD: advertise a hosted session, browse the LAN's sessions.

Thin adapters over python-zeroconf's asyncio API: zeroconf does the probing, renaming,
announcing, caching and goodbyes; this module only maps a `SessionInfo` to a service
record and resolved records back to `DiscoveredSession`s in the store. Everything runs
on the caller's asyncio loop, so store actions are never called from another thread.

Several mDNS stacks on one machine (a host and a guest on the same laptop, or the tests
on 127.0.0.1) share UDP port 5353 on the same address, and the kernel hands a unicast
reply to just one of them. Questions are therefore asked as QM (answered by multicast,
which every stack hears) rather than QU, at the price of a little more multicast.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import ifaddr
from zeroconf import (
    DNSQuestionType,
    InterfaceChoice,
    IPVersion,
    ServiceStateChange,
    Zeroconf,
)
from zeroconf import Error as ZeroconfError
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from loudsync_tui.net.reachability import DEFAULT_PROBE, ProbeOptions, ReachabilityMonitor
from loudsync_tui.protocol import PROTOCOL_VERSION, SessionInfo
from loudsync_tui.store import AppStore, DiscoveredSession

SERVICE_TYPE: Final = "_loudsync._tcp.local."

UPDATE_INTERVAL: Final = 1.0
"""Seconds between TXT updates; member churn is coalesced so the LAN is not flooded."""

RESOLVE_TIMEOUT_MS: Final = 3000

_INSTANCE_BYTES: Final = 56
"""DNS labels are at most 63 bytes; leave room for zeroconf's "-2" style rename suffix."""

_LISTEN_BEFORE_PROBING: Final = 0.5
"""Seconds of browsing before zeroconf probes the name; with its ~1.2 s of probing this
outlasts the 1 s a responder may hold back a record it has just multicast."""

_TXT_ITEM_BYTES: Final = 255
"""One TXT string (`key=value`) is at most 255 bytes."""

log = logging.getLogger(__name__)


class DiscoveryUnavailable(Exception):
    """mDNS cannot run here (no usable interface, port 5353 not bindable); join by address."""


# Interfaces --------------------------------------------------------------------------


def machine_addresses() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every IP address of this machine's interfaces."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            # ifaddr gives IPv6 as (address, flowinfo, scope_id)
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            with contextlib.suppress(ValueError):
                found.append(ipaddress.ip_address(text))
    return found


def _interface_plan(
    interfaces: Sequence[str],
) -> tuple[list[str] | InterfaceChoice, list[IPVersion | None], tuple[str, ...]]:
    """What to hand zeroconf (interfaces, IP versions to try in order) and the A/AAAA addresses.

    Explicit addresses are checked against this machine's own, because zeroconf skips an
    address it cannot bind with only a log line and would then run deaf and mute.
    """
    machine = machine_addresses()
    if interfaces:
        chosen: list[str] = []
        for text in interfaces:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise DiscoveryUnavailable(
                    f"interface address {text!r} is not an IP address"
                ) from None
            if address not in machine:
                have = ", ".join(sorted({str(a) for a in machine if a.version == 4}))
                raise DiscoveryUnavailable(
                    f"{address} is not an address of this machine (it has: {have or 'none'})"
                )
            chosen.append(str(address))
        # None: zeroconf picks V4Only, V6Only or All from the addresses given.
        return chosen, [None], tuple(chosen)

    if not machine:
        raise DiscoveryUnavailable("no network interface has an IP address; is the network up?")
    v4 = [a for a in machine if a.version == 4]
    v6 = [a for a in machine if a.version == 6 and not a.is_link_local]
    wanted_v4 = [a for a in v4 if not a.is_loopback] or v4
    addresses = [str(a) for a in wanted_v4]
    if socket.has_ipv6 and any(a.version == 6 for a in machine):
        addresses += [str(a) for a in v6 if not a.is_loopback]
        # IPv6 where the machine has it; fall back to IPv4 if the stack refuses it.
        return InterfaceChoice.All, [IPVersion.All, IPVersion.V4Only], tuple(addresses)
    return InterfaceChoice.All, [IPVersion.V4Only], tuple(addresses)


async def _open_zeroconf(interfaces: Sequence[str]) -> tuple[AsyncZeroconf, tuple[str, ...]]:
    """A started AsyncZeroconf on the chosen interfaces, and the addresses to advertise."""
    choice, versions, addresses = _interface_plan(interfaces)
    failure: Exception | None = None
    for version in versions:
        try:
            aiozc = AsyncZeroconf(interfaces=choice, ip_version=version)
        except (OSError, RuntimeError, ValueError, ZeroconfError) as exc:
            failure = exc
            continue
        try:
            await aiozc.zeroconf.async_wait_for_start()
            if aiozc.zeroconf.engine.senders:
                return aiozc, addresses
            failure = None
        except (OSError, ZeroconfError) as exc:
            failure = exc
        await aiozc.async_close()
    if failure is None:
        raise DiscoveryUnavailable("no network interface accepts multicast; join by address")
    if isinstance(failure, OSError):
        reason = failure.strerror or str(failure)
        raise DiscoveryUnavailable(
            f"cannot use mDNS (UDP port 5353): {reason}; join by address instead"
        ) from failure
    raise DiscoveryUnavailable(f"cannot use mDNS: {failure}; join by address instead") from failure


# Records -----------------------------------------------------------------------------


def _instance_name(session_name: str) -> str:
    """The DNS-SD instance label for a session name (dots would split it into labels)."""
    cleaned = " ".join(session_name.replace(".", " ").split())
    fitted = cleaned.encode()[:_INSTANCE_BYTES].decode(errors="ignore").strip()
    return fitted or "LOUDSYNC session"


def _server_name(session_id: str) -> str:
    """A host name for the A records, unique per session so one host's goodbye keeps
    another session's addresses on the same machine alive."""
    slug = re.sub(r"[^a-z0-9-]+", "-", session_id.lower()).strip("-")[:40]
    return f"loudsync-{slug or 'session'}.local."


def _fit(key: str, value: str) -> str:
    room = _TXT_ITEM_BYTES - len(key.encode()) - 1
    return value.encode()[:room].decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class Security:
    """What the TXT record says about protection: the certificate fingerprint (the host's
    identity, 64 hex characters, absent for plain ws://) and whether a PIN is needed.
    Never the PIN itself."""

    fingerprint: str | None = None
    pin_required: bool = False


def _txt(
    session: SessionInfo, members: int, revision: int, security: Security = Security()
) -> dict[str, str]:
    """The TXT record. `rev` changes with every update: without it a count that returns to
    an earlier value (2 -> 3 -> 2) matches a record browsers still cache, and zeroconf then
    reports no change, so they would keep showing 3."""
    return {
        "tls": "1" if security.fingerprint else "0",
        **({"fp": security.fingerprint} if security.fingerprint else {}),
        "pin": "1" if security.pin_required else "0",
        "id": _fit("id", session.id),
        "name": _fit("name", session.name),
        "host": _fit("host", session.host_name),
        "members": str(members),
        "max": str(session.max_members),
        "v": str(session.protocol_version),
        "rev": str(revision),
    }


def _instance_of(service_name: str) -> str:
    suffix = "." + SERVICE_TYPE
    if service_name.lower().endswith(suffix):
        return service_name[: -len(suffix)]
    return service_name


def _int_field(props: dict[str, str | None], key: str, minimum: int) -> int | None:
    text = props.get(key)
    if text is None or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value >= minimum else None


def session_from_service(key: str, info: AsyncServiceInfo) -> DiscoveredSession | None:
    """A resolved record as a `DiscoveredSession`, or None if its TXT is missing or garbled."""
    props = info.decoded_properties
    session_id, name, host = props.get("id"), props.get("name"), props.get("host")
    members = _int_field(props, "members", 0)
    max_members = _int_field(props, "max", 1)
    version = _int_field(props, "v", 0)
    if not session_id or not name or host is None or info.port is None:
        return None
    if members is None or max_members is None or version is None:
        return None
    fingerprint = props.get("fp") or None
    if fingerprint is not None and len(fingerprint) != 64:
        fingerprint = None  # garbled: treat as unknown, the guest will ask
    why_not: str | None = None
    if version != PROTOCOL_VERSION:
        why_not = f"needs protocol version {version}"
    elif members >= max_members:
        why_not = "full"
    return DiscoveredSession(
        key=key,
        session_id=session_id,
        name=name,
        host_name=host,
        addresses=tuple(info.parsed_scoped_addresses()),
        port=info.port,
        members=members,
        max_members=max_members,
        protocol_version=version,
        joinable=why_not is None,
        why_not=why_not,
        encrypted=props.get("tls") == "1",
        fingerprint=fingerprint,
        pin_required=props.get("pin") == "1",
    )


def _ignore_changes(**_: object) -> None:
    """A browser needs a handler; the advertiser only wants the cache it fills."""


# Advertising -------------------------------------------------------------------------


class SessionAdvertiser:
    """Publishes one hosted session as `_loudsync._tcp.local.` until `stop()`."""

    def __init__(self, interfaces: Sequence[str] = ()) -> None:
        self._interfaces = tuple(interfaces)
        self._aiozc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._session: SessionInfo | None = None
        self._members = 0
        self._published_members = 0
        self._revision = 1
        self._last_publish = -math.inf
        self._flush: asyncio.Task[None] | None = None
        self._broadcasts: set[asyncio.Future[object]] = set()
        self._security = self._published_security = Security()

    @property
    def instance_name(self) -> str | None:
        """The registered instance name (after any rename), None when not advertising."""
        return None if self._info is None else _instance_of(self._info.name)

    async def start(
        self,
        info: SessionInfo,
        port: int,
        addresses: Sequence[str] = (),
        security: Security = Security(),
    ) -> str:
        """Register the session; returns the instance name, renamed if the LAN already has it.

        Raises DiscoveryUnavailable when mDNS cannot run here.
        """
        if self._aiozc is not None:
            raise RuntimeError("SessionAdvertiser already started")
        self._members = info.member_count
        aiozc, own_addresses = await _open_zeroconf(self._interfaces)
        # zeroconf's name-conflict check reads its cache. Its QU probes are answered by
        # unicast, which another stack on this machine may swallow; a QM browse started a
        # little earlier gets multicast answers into the cache in time, even from a
        # responder that may repeat a record only once a second (RFC 6762 section 14).
        warm_up = AsyncServiceBrowser(
            aiozc.zeroconf,
            SERVICE_TYPE,
            handlers=[_ignore_changes],
            question_type=DNSQuestionType.QM,
        )
        try:
            service = AsyncServiceInfo(
                SERVICE_TYPE,
                f"{_instance_name(info.name)}.{SERVICE_TYPE}",
                port=port,
                properties=_txt(info, info.member_count, 1, security),
                server=_server_name(info.id),
                parsed_addresses=list(addresses or own_addresses),
            )
            await asyncio.sleep(_LISTEN_BEFORE_PROBING)
            announced = await aiozc.async_register_service(service, allow_name_change=True)
            await announced
        except BaseException as exc:
            await warm_up.async_cancel()
            await aiozc.async_close()
            if isinstance(exc, ZeroconfError | OSError | ValueError):
                raise DiscoveryUnavailable(f"cannot advertise the session: {exc}") from exc
            raise
        await warm_up.async_cancel()
        self._aiozc, self._info, self._session = aiozc, service, info
        self._security = self._published_security = security
        self._published_members = info.member_count
        self._revision = 1
        self._last_publish = asyncio.get_running_loop().time()
        await self.update(self._members)  # a count that changed while we registered
        return _instance_of(service.name)

    async def update(self, member_count: int, security: Security | None = None) -> None:
        """Publish a new member count (or PIN flag), at most once per UPDATE_INTERVAL; the
        last value wins."""
        self._members = member_count
        if security is not None:
            self._security = security
        if self._info is None or self._flush is not None:
            return  # not advertising, or a pending flush will carry this value
        if member_count == self._published_members and self._security == self._published_security:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_publish + UPDATE_INTERVAL - loop.time()
        if wait > 0:
            self._flush = loop.create_task(self._publish_after(wait))
        else:
            await self._publish()

    async def _publish_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._flush = None
        try:
            await self._publish()
        except Exception:
            log.exception("mDNS: updating the member count failed")

    async def _publish(self) -> None:
        aiozc, current, session = self._aiozc, self._info, self._session
        if aiozc is None or current is None or session is None:
            return
        members, security = self._members, self._security
        if members == self._published_members and security == self._published_security:
            return
        self._revision += 1
        updated = AsyncServiceInfo(
            SERVICE_TYPE,
            current.name,
            port=current.port,
            properties=_txt(session, members, self._revision, security),
            server=current.server,
            addresses=current.addresses,
        )
        self._last_publish = asyncio.get_running_loop().time()
        self._published_members = members
        self._published_security = security
        self._info = updated
        broadcast = asyncio.ensure_future(await aiozc.async_update_service(updated))
        self._broadcasts.add(broadcast)
        broadcast.add_done_callback(self._broadcasts.discard)

    async def stop(self) -> None:
        """Say goodbye so browsers drop the session now, then close the sockets."""
        aiozc, service = self._aiozc, self._info
        self._aiozc = self._info = self._session = None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        for broadcast in list(self._broadcasts):
            broadcast.cancel()
        if aiozc is None:
            return
        try:
            if service is not None:
                goodbye = await aiozc.async_unregister_service(service)
                await goodbye
        except (OSError, ZeroconfError):
            log.warning("mDNS: the goodbye failed; browsers drop the session by TTL")
        finally:
            await aiozc.async_close()


# Browsing ----------------------------------------------------------------------------


class SessionBrowser:
    """Keeps the store's discovered sessions in step with the LAN; never raises into the app.

    While browsing it also checks that each listed host still answers (see
    `reachability`), unless `probe` is None: mDNS alone keeps a host that died without a
    goodbye listed for minutes.
    """

    def __init__(
        self,
        store: AppStore,
        interfaces: Sequence[str] = (),
        probe: ProbeOptions | None = DEFAULT_PROBE,
    ) -> None:
        self._store = store
        self._interfaces = tuple(interfaces)
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._monitor = None if probe is None else ReachabilityMonitor(store, probe)

    async def start(self) -> None:
        if self._aiozc is not None:
            return
        try:
            aiozc, _ = await _open_zeroconf(self._interfaces)
        except DiscoveryUnavailable as exc:
            self._store.discovery_failed(str(exc))
            return
        except Exception as exc:
            log.exception("mDNS: browsing could not start")
            self._store.discovery_failed(f"browsing could not start: {exc}")
            return
        self._aiozc = aiozc
        self._store.discovery_started()
        self._browser = AsyncServiceBrowser(
            aiozc.zeroconf,
            SERVICE_TYPE,
            handlers=[self._on_change],
            question_type=DNSQuestionType.QM,
        )
        if self._monitor is not None:
            self._monitor.start()

    async def rescan(self) -> None:
        """Forget every session and ask the LAN afresh (a new cache drops silent leavers)."""
        await self.stop()
        self._store.sessions_cleared()
        await self.start()

    async def stop(self) -> None:
        aiozc, browser = self._aiozc, self._browser
        self._aiozc = self._browser = None
        if self._monitor is not None:
            await self._monitor.stop()
        tasks = list(self._resolving.values())
        self._resolving.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            if browser is not None:
                await browser.async_cancel()
            if aiozc is not None:
                await aiozc.async_close()
        except Exception:
            log.exception("mDNS: closing the browser failed")
        self._store.discovery_stopped()

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        """Called by zeroconf on our loop; resolving happens in a task per service."""
        if self._aiozc is None:
            return  # stopped: nothing more goes into the store
        key = _instance_of(name)
        previous = self._resolving.pop(name, None)
        if previous is not None:
            previous.cancel()
        if state_change is ServiceStateChange.Removed:
            self._store.session_lost(key)
            return
        task = asyncio.get_running_loop().create_task(
            self._resolve(zeroconf, service_type, name, key)
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
                zeroconf, RESOLVE_TIMEOUT_MS, question_type=DNSQuestionType.QM
            )
            session = session_from_service(key, info) if found else None
        except Exception:  # one odd record must not take discovery down
            log.exception("mDNS: resolving %s failed", name)
            return
        if not found:
            log.debug("mDNS: %s did not answer in time", name)
        elif session is None:
            log.debug("mDNS: ignoring %s: missing or garbled TXT %r", name, info.properties)
            self._store.session_lost(key)
        else:
            self._store.session_seen(session)


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
    store = AppStore()
    browser = SessionBrowser(store, interfaces, probe=None)
    announced: set[str] = set()

    def found(sessions: Mapping[str, DiscoveredSession], _old: object) -> None:
        for key in sessions.keys() - announced:
            announced.add(key)
            if on_found is not None:
                on_found(sessions[key])

    unsubscribe = store.subscribe(found, lambda s: s.discovery.sessions)
    await browser.start()
    try:
        error = store.get().discovery.error
        if error is not None:
            raise DiscoveryUnavailable(error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((stop or asyncio.Event()).wait(), timeout)
        store.flush()  # a session resolved in the last loop turn is announced too
    finally:
        unsubscribe()
        await browser.stop()
    sessions = store.get().discovery.sessions.values()
    return sorted(sessions, key=lambda s: (s.name.casefold(), s.key))
