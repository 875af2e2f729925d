"""Stand-ins for the network services: the host is a real host core without sockets
(`SimulatedHost`); the guest drives the store as the guest service does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.protocol import MemberInfo
from loudsync_tui.store import AppStore, ConnectionState, Member
from loudsync_tui.tui.services import Services
from loudsync_tui.tui.simulated_host import CLOSED_REASON, SimulatedHost

T0 = 1_764_086_400_000
"""A fixed wall-clock time (ms) so screens and snapshots are reproducible."""
FP = "ab12" * 16
"""The fake host's certificate fingerprint (when its config asks for TLS)."""
GENERATED_PIN = "975310"
BANNED_ADDRESS = "192.168.1.99"
"""Where a guest joins from when a test kicks and bans its address."""


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


def info_of(row: Member) -> MemberInfo:
    """The row as the host core's effects carry it."""
    return MemberInfo(row.id, row.name, row.is_host, row.status, row.joined_at, row.latency)


class FakeHost(SimulatedHost):
    """A real host core on the fake clock (see `SimulatedHost`) that also remembers what
    the app asked of it."""

    def __init__(self, config: HostConfig, store: AppStore, fail: str | None = None) -> None:
        super().__init__(
            config, store, fingerprint=FP, wall_start_ms=T0, generated_pin=GENERATED_PIN
        )
        self.fail = fail
        self.kicked: list[str] = []
        self.address_bans: list[str] = []
        self.lifted: list[str] = []
        self.stopped = False

    async def start(self) -> None:
        if self.fail:
            raise OSError(self.fail)
        await super().start()

    def join_member(
        self, n: int, *, latency: float | None = 3.2, address: str | None = None
    ) -> str:
        """Guest `n` joins as `member(n)` shows it: from 192.168.1.(30+n) unless `address`
        ("" for none) says otherwise; returns its id."""
        shown = member(n, latency=latency, address=address)
        ip = shown.address if address is None else address
        self.join(shown.id, shown.name, address=f"{ip}:{51000 + n}" if ip else "", latency=latency)
        return shown.id

    def kick(self, member_id: str, *, ban_address: bool = False) -> None:
        self.kicked.append(member_id)
        if ban_address:
            self.address_bans.append(member_id)
        super().kick(member_id, ban_address=ban_address)

    def lift_ban(self, key: str) -> None:
        self.lifted.append(key)
        super().lift_ban(key)

    def stop(self) -> None:
        self.stopped = True
        super().stop()

    async def aclose(self, reason: str = CLOSED_REASON) -> None:
        self.stopped = True
        await super().aclose(reason)


@dataclass
class FakeGuest:
    config: GuestConfig
    store: AppStore
    left: bool = False
    retried: int = 0
    controls: list[tuple[str, float]] = field(default_factory=list)
    outputs: list[tuple[float | None, float | None]] = field(default_factory=list)
    closed: bool = False
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self.store.guest_joining(self.config.address)

    def leave(self) -> None:
        self.left = True
        self.end("You left", "left")

    def retry(self) -> None:
        self.retried += 1
        self.store.guest_connection(ConnectionState.CONNECTING)

    def control(self, action: str, seconds: float = 0.0) -> None:
        self.controls.append((action, seconds))

    def set_local_output(
        self, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        self.outputs.append((volume, latency_offset_ms))

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
