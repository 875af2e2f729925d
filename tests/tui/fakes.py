"""Stand-ins for the network services: they drive the store exactly as the real ones do."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.store import AppStore, ConnectionState, HostingState, Member
from loudsync_tui.tui.services import Services

T0 = 1_764_086_400_000
"""A fixed wall-clock time (ms) so screens and snapshots are reproducible."""
FP = "ab12" * 16
"""The fake host's certificate fingerprint (when its config asks for TLS)."""
GENERATED_PIN = "975310"
BANNED_ADDRESS = "192.168.1.99"


def member(
    n: int, *, host: bool = False, latency: float | None = 3.2, address: str | None = None
) -> Member:
    """Guest `n`, seen by the host at 192.168.1.(30+n) unless `address` says otherwise."""
    return Member(
        id=f"dev-{n:04d}",
        name=f"Member {n}" if not host else "Grace",
        is_host=host,
        status="connected",
        joined_at=T0 + n * 60_000,
        latency=None if host else latency,
        device_type="terminal",
        address="" if host else (address or f"192.168.1.{30 + n}"),
    )


@dataclass
class FakeHost:
    config: HostConfig
    store: AppStore
    kicked: list[str] = field(default_factory=list)
    address_bans: list[str] = field(default_factory=list)
    lifted: list[str] = field(default_factory=list)
    stopped: bool = False
    fail: str | None = None

    async def start(self) -> None:
        if self.fail:
            raise OSError(self.fail)
        me = Member(self.config.host_id, self.config.host_name, True, "connected", T0)
        hosting = HostingState(
            session_id="k3v9q2",
            session_name=self.config.session_name,
            host_id=self.config.host_id,
            host_name=self.config.host_name,
            address="192.168.1.20:8080",
            port=8080,
            max_members=self.config.max_members,
            members={me.id: me},
            fingerprint=FP if self.config.tls else None,
            pin=GENERATED_PIN if self.config.pin == "" else self.config.pin,
        )
        self.store.hosting_started(hosting, control=self)

    def kick(self, member_id: str, *, ban_address: bool = False) -> None:
        self.kicked.append(member_id)
        self.store.host_member_left(member_id)
        hosting = self.store.get().hosting
        assert hosting is not None
        addresses = hosting.banned_addresses
        if ban_address:
            self.address_bans.append(member_id)
            addresses |= {BANNED_ADDRESS}
        self.store.host_bans_set(hosting.banned | {member_id}, addresses)

    def lift_ban(self, key: str) -> None:
        self.lifted.append(key)
        hosting = self.store.get().hosting
        assert hosting is not None
        self.store.host_bans_set(hosting.banned - {key}, hosting.banned_addresses - {key})

    def set_pin(self, pin: str | None) -> None:
        self.store.host_pin_set(GENERATED_PIN if pin == "" else pin)

    def stop(self) -> None:
        self.stopped = True
        asyncio.get_running_loop().call_soon(self.store.hosting_stopped)

    async def aclose(self, reason: str = "") -> None:
        self.stopped = True
        self.store.hosting_stopped()


@dataclass
class FakeGuest:
    config: GuestConfig
    store: AppStore
    left: bool = False
    retried: int = 0
    closed: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self.store.guest_joining(self.config.address, control=self)

    def leave(self) -> None:
        self.left = True
        self.end("You left", "left")

    def retry(self) -> None:
        self.retried += 1
        self.store.guest_connection(ConnectionState.CONNECTING)

    def end(
        self,
        reason: str,
        code: str,
        *,
        fingerprint: str | None = None,
        changed: bool = False,
    ) -> None:
        """End as the real service does; with a fingerprint, as a trust question."""
        if fingerprint is not None:
            self.store.guest_security(encrypted=True, fingerprint=fingerprint)
        question = reason if code == "untrusted" else None
        self.store.guest_ended(reason, code, question=question, changed=changed)
        self.ended.set()

    async def aclose(self) -> None:
        self.closed = True

    async def wait_ended(self) -> str:
        await self.ended.wait()
        return "ended"


@dataclass
class FakeServices:
    """Factories that remember what they made, so tests can reach the fakes."""

    hosts: list[FakeHost] = field(default_factory=list)
    guests: list[FakeGuest] = field(default_factory=list)
    host_fail: str | None = None

    def host(self, config: HostConfig, store: AppStore) -> FakeHost:
        made = FakeHost(config, store, fail=self.host_fail)
        self.hosts.append(made)
        return made

    def guest(self, config: GuestConfig, store: AppStore) -> FakeGuest:
        made = FakeGuest(config, store)
        self.guests.append(made)
        return made

    def services(self) -> Services:
        return Services(host=self.host, guest=self.guest, browser=None)
