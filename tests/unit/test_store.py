"""The reactive store: selectors, equality, unsubscribe, coalescing, order, failing listeners."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

from loudsync_tui.core.effects import BansChanged, MemberChanged, MemberRemoved, PinChanged
from loudsync_tui.protocol import MemberInfo
from loudsync_tui.store import AppStore, ConnectionState, DiscoveredSession, HostingState, Member
from loudsync_tui.store.state import LOG_LIMIT
from loudsync_tui.store.store import Store


@dataclass(frozen=True)
class S:
    a: int = 0
    b: int = 0


def test_get_and_set_value_or_function() -> None:
    store = Store(S())
    store.set(S(a=1))
    assert store.get() == S(a=1)
    store.set(lambda s: replace(s, b=s.a + 1))
    assert store.get() == S(a=1, b=2)


def test_listener_runs_only_when_its_slice_changes() -> None:
    store = Store(S())
    calls: list[tuple[int, int]] = []
    store.subscribe(lambda new, old: calls.append((new, old)), selector=lambda s: s.a)
    store.set(lambda s: replace(s, b=5))
    assert calls == []
    store.set(lambda s: replace(s, a=7))
    assert calls == [(7, 0)]


def test_custom_equality() -> None:
    store = Store(S())
    calls: list[int] = []
    store.subscribe(
        lambda new, old: calls.append(new),
        selector=lambda s: s.a,
        equals=lambda x, y: x // 10 == y // 10,
    )
    store.set(S(a=5))
    assert calls == []
    store.set(S(a=15))
    assert calls == [15]


def test_unsubscribe_stops_calls_and_is_idempotent() -> None:
    store = Store(S())
    calls: list[S] = []
    unsubscribe = store.subscribe(lambda new, old: calls.append(new))
    store.set(S(a=1))
    unsubscribe()
    unsubscribe()
    store.set(S(a=2))
    assert calls == [S(a=1)]


def test_listeners_run_in_subscription_order() -> None:
    store = Store(S())
    order: list[str] = []
    for name in "abc":
        store.subscribe(lambda new, old, name=name: order.append(name))
    store.set(S(a=1))
    assert order == ["a", "b", "c"]


def test_a_failing_listener_does_not_break_the_others() -> None:
    errors: list[BaseException] = []
    store = Store(S(), on_listener_error=errors.append)
    seen: list[int] = []

    def boom(new: S, old: S) -> None:
        raise RuntimeError("boom")

    store.subscribe(boom)
    store.subscribe(lambda new, old: seen.append(new.a))
    store.set(S(a=1))
    store.set(S(a=2))
    assert seen == [1, 2]
    assert [str(e) for e in errors] == ["boom", "boom"]


def test_failing_selector_is_reported_too() -> None:
    errors: list[BaseException] = []
    store = Store(S(), on_listener_error=errors.append)
    store.subscribe(lambda new, old: None, selector=lambda s: 1 // 0 if s.a == 1 else s.a)
    store.set(S(a=1))
    assert len(errors) == 1
    assert isinstance(errors[0], ZeroDivisionError)


async def test_burst_of_sets_in_one_tick_notifies_once() -> None:
    store = Store(S())
    calls: list[tuple[int, int]] = []
    store.subscribe(lambda new, old: calls.append((new, old)), selector=lambda s: s.a)
    for i in range(1, 1001):
        store.set(lambda s, i=i: replace(s, a=i))
    assert calls == []
    assert store.get().a == 1000
    await asyncio.sleep(0)
    assert calls == [(1000, 0)]
    assert store.notifications == 1


async def test_change_and_revert_within_a_tick_notifies_nobody() -> None:
    store = Store(S())
    calls: list[int] = []
    store.subscribe(lambda new, old: calls.append(new), selector=lambda s: s.a)
    store.set(S(a=1))
    store.set(S(a=0))
    await asyncio.sleep(0)
    assert calls == []


async def test_listener_subscribed_during_a_flush_sees_the_next_change() -> None:
    store = Store(S())
    late: list[int] = []

    def first(new: S, old: S) -> None:
        store.subscribe(lambda n, o: late.append(n.a))

    unsubscribe = store.subscribe(first)
    store.set(S(a=1))
    await asyncio.sleep(0)
    unsubscribe()
    store.set(S(a=2))
    await asyncio.sleep(0)
    assert late == [2]


def _session(key: str, members: int = 1) -> DiscoveredSession:
    return DiscoveredSession(
        key, "id-" + key, key, "Grace", ("127.0.0.1",), 8080, members, 10, 1, True
    )


def test_discovery_actions() -> None:
    store = AppStore()
    store.session_seen(_session("a"))
    store.session_seen(_session("b"))
    store.session_seen(_session("a", members=3))  # the same record again, updated
    assert store.get().discovery.sessions["a"].members == 3
    store.session_lost("b")
    store.session_lost("missing")
    assert list(store.get().discovery.sessions) == ["a"]
    store.discovery_started()
    assert store.get().discovery.browsing
    store.discovery_stopped()
    assert not store.get().discovery.browsing
    store.discovery_failed("no multicast")
    assert store.get().discovery.error == "no multicast"
    assert store.get().log[-1].level == "warning"


def test_unchanged_session_does_not_notify() -> None:
    store = AppStore()
    store.session_seen(_session("a"))
    calls: list[object] = []
    store.subscribe(lambda n, o: calls.append(n), selector=lambda s: s.discovery)
    store.session_seen(_session("a"))
    assert calls == []


def test_hosting_actions() -> None:
    store = AppStore()
    store.hosting_started(
        HostingState("s", "Friday", "h", "Grace", "ws://127.0.0.1:8080", 8080, 10)
    )
    host = Member("h", "Grace", True, "connected", 1)
    guest = Member("g", "Ada", False, "connected", 2)
    store.host_members_set([host])
    store.host_member_joined(guest)
    info = MemberInfo("g", "Ada", False, "connected", 2, latency=4.0)
    store.host_effects([MemberChanged(info, "")])  # what the host core said: one reducer
    hosting = store.get().hosting
    assert hosting is not None
    assert hosting.members["g"].latency == 4.0
    store.host_effects(
        [
            MemberRemoved("g", "Ada", "kicked"),
            BansChanged(frozenset({"g"}), frozenset({"10.0.0.9"}), (("g", "Ada"),)),
        ]
    )
    hosting = store.get().hosting
    assert hosting is not None
    assert list(hosting.members) == ["h"]
    assert hosting.banned == {"g"}
    assert hosting.banned_addresses == {"10.0.0.9"}
    store.host_effects([PinChanged("4321")])
    hosting = store.get().hosting
    assert hosting is not None
    assert hosting.pin == "4321"
    store.hosting_stopped()
    assert store.get().hosting is None


def test_guest_actions() -> None:
    store = AppStore()
    store.guest_joining("127.0.0.1:8080")
    guest = store.get().guest
    assert guest is not None
    assert guest.connection is ConnectionState.CONNECTING
    store.guest_welcomed(
        client_id="me", session_id="s", session_name="Friday", host_name="Grace", max_members=10
    )
    store.guest_members_set(
        [Member("h", "Grace", True, "connected", 1), Member("me", "Ada", False, "connected", 2)]
    )
    store.guest_latency(1.5)
    store.guest_connection(ConnectionState.RECONNECTING, attempt=2, max_attempts=3)
    guest = store.get().guest
    assert guest is not None
    assert guest.connection is ConnectionState.RECONNECTING
    assert (guest.attempt, guest.max_attempts) == (2, 3)
    assert set(guest.members) == {"h", "me"}
    store.guest_ended("You were removed by the host", "kicked")
    guest = store.get().guest
    assert guest is not None
    assert guest.ended == "You were removed by the host"
    assert guest.connection is ConnectionState.DISCONNECTED
    store.guest_cleared()
    assert store.get().guest is None


def test_event_log_is_bounded() -> None:
    store = AppStore()
    for i in range(LOG_LIMIT + 50):
        store.log_event(f"event {i}")
    log = store.get().log
    assert len(log) == LOG_LIMIT
    assert log[-1].text == f"event {LOG_LIMIT + 49}"
    assert log[0].text == "event 50"


async def test_thousand_member_updates_cost_one_notification() -> None:
    store = AppStore()
    store.hosting_started(HostingState("s", "F", "h", "G", "a", 1, 2000))
    await asyncio.sleep(0)
    redraws: list[int] = []
    store.subscribe(
        lambda n, o: redraws.append(len(n)),
        selector=lambda s: s.hosting.members if s.hosting else {},
    )
    for i in range(1000):
        store.host_member_joined(Member(f"m{i}", f"M{i}", False, "connected", i))
    await asyncio.sleep(0)
    assert redraws == [1000]
