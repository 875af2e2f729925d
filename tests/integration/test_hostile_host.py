"""A malicious host cannot freeze or exhaust a guest: real sockets on 127.0.0.1.

The rogue host (tests/support/rogue_host.py) lies about its members and timestamps; the
guest must hold no more members than the session's advertised maximum, log the refusal
once, apply a burst of updates as one store change and keep working.
"""

from __future__ import annotations

import json

from msgspec.structs import replace
from websockets.asyncio.server import ServerConnection

from loudsync_tui.config import GuestConfig
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.protocol import (
    Join,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    MemberList,
    MemberUpdated,
    encode,
    now_ms,
)
from loudsync_tui.store import AppState, AppStore
from loudsync_tui.tui import format
from tests.support.rogue_host import SESSION, rogue_host, welcome
from tests.support.waiting import eventually

FLOOD = 30_000
UPDATES = 10_000


def _member(i: int, joined_at: int | None = None) -> MemberInfo:
    return MemberInfo(
        id=f"fake-{i}",
        name=f"Fake {i}",
        is_host=i == 0,
        connection_status="connected",
        joined_at=now_ms() if joined_at is None else joined_at,
    )


def _config(port: int) -> GuestConfig:
    return GuestConfig(
        address=f"127.0.0.1:{port}",
        name="Victim",
        device_id="dev-victim",
        tls=False,
        connect_timeout=10.0,  # roomy on a loaded machine: these tests are about what follows
        reconnect_attempts=0,
    )


def _members(state: AppState) -> dict[str, object]:
    return dict(state.guest.members) if state.guest is not None else {}


class CountingStore(AppStore):
    """Counts the store changes that replaced the guest's member map."""

    member_changes = 0

    def set(self, update: object) -> None:  # type: ignore[override]
        before = self.get().guest
        super().set(update)  # type: ignore[arg-type]
        after = self.get().guest
        if before is not None and after is not None and before.members is not after.members:
            self.member_changes += 1


async def test_a_flood_of_members_is_capped_at_the_advertised_maximum() -> None:
    async def flood(ws: ServerConnection, join: Join) -> None:
        await ws.send(welcome(join))
        await ws.send(encode(MemberList(timestamp=now_ms(), members=[_member(0)])))
        for i in range(1, FLOOD + 1):
            await ws.send(encode(MemberJoined(timestamp=now_ms(), member=_member(i))))
        for i in range(UPDATES):  # the members it holds, changing all the time
            member = replace(_member(i % SESSION.max_members), latency=float(i % 97))
            await ws.send(encode(MemberUpdated(timestamp=now_ms(), members=[member])))
        # The last word: fake-1 leaves, so the test knows every frame before it was read.
        await ws.send(encode(MemberLeft(timestamp=now_ms(), member_id="fake-1", reason="left")))

    store = CountingStore()
    async with rogue_host(flood) as port:
        guest = GuestService(_config(port), store)
        guest.start()
        try:
            await eventually(lambda: any("Fake 1 left" in e.text for e in store.get().log), 30)
        finally:
            await guest.aclose()
    state = store.get()
    assert len(_members(state)) == SESSION.max_members - 1
    assert "fake-1" not in _members(state)
    assert sum("more members" in e.text for e in state.log) == 1
    assert sum(e.text.endswith(" joined") for e in state.log) == SESSION.max_members - 1
    # One store change per burst of frames, not one per frame (10,000 before).
    assert store.member_changes < UPDATES // 10, store.member_changes


async def test_an_absurd_timestamp_is_refused_and_the_table_keeps_working() -> None:
    async def lie(ws: ServerConnection, join: Join) -> None:
        await ws.send(welcome(join))
        bad = json.loads(encode(MemberList(timestamp=now_ms(), members=[_member(0)])))
        bad["members"][0]["joinedAt"] = 10**23
        await ws.send(json.dumps(bad))
        await ws.send(encode(MemberList(timestamp=now_ms(), members=[_member(0), _member(1)])))

    store = AppStore()
    async with rogue_host(lie) as port:
        guest = GuestService(_config(port), store)
        guest.start()
        try:
            await eventually(lambda: len(_members(store.get())) == 2, 10)
        finally:
            await guest.aclose()
    log = [e.text for e in store.get().log]
    assert any("Ignored a bad message from the host" in t and "joinedAt" in t for t in log), log
    guest_state = store.get().guest
    assert guest_state is not None
    for member in guest_state.members.values():
        assert format.clock(member.joined_at)  # every row still formats
