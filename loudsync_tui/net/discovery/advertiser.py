"""Advertising one hosted session over mDNS/DNS-SD until it stops.

A thin adapter over python-zeroconf's asyncio API: zeroconf does the probing, renaming,
announcing and goodbyes; `records` says what the service record holds. Member-count
updates are coalesced (`UPDATE_INTERVAL`) so a busy session does not flood the LAN.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Sequence
from typing import Final

from zeroconf import Error as ZeroconfError
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from loudsync_tui.net.discovery.interfaces import (
    QUESTION_TYPE,
    DiscoveryUnavailable,
    open_zeroconf,
)
from loudsync_tui.net.discovery.records import (
    SERVICE_TYPE,
    UNPROTECTED,
    Security,
    instance_name,
    instance_of,
    server_name,
    service_name,
    txt_record,
)
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.protocol import SessionInfo

UPDATE_INTERVAL: Final = 1.0
"""Seconds between TXT updates; member churn is coalesced so the LAN is not flooded."""

LISTEN_BEFORE_PROBING: Final = 0.5
"""Seconds of browsing before zeroconf probes the name; with its ~1.2 s of probing this
outlasts the 1 s a responder may hold back a record it has just multicast."""

log = logging.getLogger(__name__)


def _ignore_changes(**_: object) -> None:
    """A browser needs a handler; the advertiser only wants the cache it fills."""


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
        self._tasks = TaskOwner("mDNS advertiser")  # the pending flush, the rebroadcasts
        self._flush: asyncio.Task[None] | None = None
        self._security = self._published_security = UNPROTECTED

    @property
    def instance_name(self) -> str | None:
        """The registered instance name (after any rename), None when not advertising."""
        return None if self._info is None else instance_of(self._info.name)

    async def start(
        self,
        info: SessionInfo,
        port: int,
        addresses: Sequence[str] = (),
        security: Security = UNPROTECTED,
    ) -> str:
        """Register the session; returns the instance name, renamed if the LAN already has it.

        Raises DiscoveryUnavailable when mDNS cannot run here.
        """
        if self._aiozc is not None:
            raise RuntimeError("SessionAdvertiser already started")
        self._members = info.member_count
        aiozc, own_addresses = await open_zeroconf(self._interfaces)
        # zeroconf's name-conflict check reads its cache. Its QU probes are answered by
        # unicast, which another stack on this machine may swallow; a QM browse started a
        # little earlier gets multicast answers into the cache in time, even from a
        # responder that may repeat a record only once a second (RFC 6762 section 14).
        warm_up = AsyncServiceBrowser(
            aiozc.zeroconf,
            SERVICE_TYPE,
            handlers=[_ignore_changes],
            question_type=QUESTION_TYPE,
        )
        try:
            service = AsyncServiceInfo(
                SERVICE_TYPE,
                service_name(instance_name(info.name)),
                port=port,
                properties=txt_record(info, info.member_count, 1, security),
                server=server_name(info.id),
                parsed_addresses=list(addresses or own_addresses),
            )
            await asyncio.sleep(LISTEN_BEFORE_PROBING)
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
        return instance_of(service.name)

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
            self._flush = self._tasks.spawn(self._publish_after(wait), name="mdns-flush")
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
            properties=txt_record(session, members, self._revision, security),
            server=current.server,
            addresses=current.addresses,
        )
        self._last_publish = asyncio.get_running_loop().time()
        self._published_members = members
        self._published_security = security
        self._info = updated
        broadcast = asyncio.ensure_future(await aiozc.async_update_service(updated))
        waiting = self._tasks.spawn(_rebroadcast(broadcast), name="mdns-rebroadcast")
        waiting.add_done_callback(lambda _: broadcast.cancel())  # cancelled before it awaited

    async def stop(self) -> None:
        """Say goodbye so browsers drop the session now, then close the sockets."""
        aiozc, service = self._aiozc, self._info
        self._aiozc = self._info = self._session = None
        self._flush = None
        self._tasks.cancel()  # not closed: the advertiser may start again
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
            await self._tasks.wait(1.0)


async def _rebroadcast(broadcast: Awaitable[object]) -> None:
    """Await zeroconf's rebroadcasts of an update: held by the owner, cancelled with it."""
    await broadcast
