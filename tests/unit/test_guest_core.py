"""The guest's session rules (issue 3, guest behaviour), driven with a fake clock, no sockets.

The last tests wire a HostSession and several GuestSessions together in memory.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import pytest

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.core.clock import ManualClock
from loudsync_tui.core.effects import Broadcast, Close, ConnId, HostEffect, Log, Send
from loudsync_tui.core.guest import (
    LATENCY_SMOOTHING,
    ClockEstimated,
    Connect,
    Disconnect,
    Ended,
    GuestEffect,
    GuestSession,
    HostFacts,
    LatencyMeasured,
    LookUpHost,
    MemberGone,
    MembersReplaced,
    MembersUpdated,
    StateChanged,
    Transmit,
    Welcomed,
)
from loudsync_tui.core.host import HostSession
from loudsync_tui.protocol import (
    CloseCode,
    ConnectionStatus,
    DeviceInfo,
    Error,
    ErrorCode,
    Heartbeat,
    Join,
    Kicked,
    Leave,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    MemberList,
    MemberUpdated,
    Message,
    Ping,
    Pong,
    SessionClosed,
    SessionInfo,
    Welcome,
    encode,
)
from loudsync_tui.store.state import ConnectionState as S

SID = "k3v9q2"
T = 1_764_086_400_000
M = TypeVar("M")


# Helpers ----------------------------------------------------------------------


class Guest:
    """A GuestSession on a ManualClock with a seeded random source."""

    def __init__(self, seed: int = 7, **overrides: Any) -> None:
        self.clock = ManualClock()
        self.config = replace(
            GuestConfig(address="127.0.0.1:8080", name="Ada", device_id="dev-a"), **overrides
        )
        self.core = GuestSession(self.config, SID, self.clock, random.Random(seed))

    def feed(self, message: Message) -> list[GuestEffect]:
        return self.core.received(encode(message))

    def advance(self, seconds: float) -> list[GuestEffect]:
        self.clock.advance(seconds)
        return self.core.tick()

    def connected(
        self, token: str = "tok-1", interval: int = 5000, timeout: int = 15000
    ) -> list[GuestEffect]:
        """start (or a reconnect), opened, WELCOME: returns the WELCOME's effects."""
        if self.core.state is S.DISCONNECTED:
            assert Connect() in begin(self.core)
        self.core.opened()
        return self.feed(welcome(token, interval, timeout))

    def now_ms(self) -> int:
        return self.clock.wall_ms()


PLAIN_HOST = HostFacts(SID, "dev-host", "Friday listening", "Grace", "127.0.0.1:8080", False, None)
"""A host that answered the lookup over plain HTTP, nothing pinned for it."""


def begin(core: GuestSession) -> list[GuestEffect]:
    """start(), and the host answers the lookup plainly: the effects of that answer."""
    assert LookUpHost() in core.start()
    return core.host_answered(PLAIN_HOST)


def state(core: GuestSession) -> S:
    """The state, read through a call so mypy does not narrow it across inputs."""
    return core.state


def welcome(token: str = "tok-1", interval: int = 5000, timeout: int = 15000) -> Welcome:
    return Welcome(
        timestamp=T,
        client_id="dev-a",
        resume_token=token,
        session=SessionInfo(SID, "Friday listening", "dev-host", "Grace", 10, 2, 1),
        heartbeat_interval=interval,
        heartbeat_timeout=timeout,
    )


def of(effects: list[Any], kind: type[M]) -> list[M]:
    return [e for e in effects if isinstance(e, kind)]


def sent(effects: list[GuestEffect]) -> list[Message]:
    return [e.message for e in of(effects, Transmit)]


def states(effects: list[GuestEffect]) -> list[S]:
    return [e.state for e in of(effects, StateChanged)]


def member(mid: str, status: ConnectionStatus = "connected") -> MemberInfo:
    return MemberInfo(mid, mid.title(), mid == "dev-host", status, T)


# State machine ----------------------------------------------------------------


def test_start_connects_and_opened_sends_join() -> None:
    g = Guest()
    assert g.core.state is S.DISCONNECTED
    assert g.core.start() == [StateChanged(S.CONNECTING, 0, 3), LookUpHost()]
    assert state(g.core) is S.CONNECTING
    assert g.core.start() == []  # once only
    assert of(g.core.host_answered(PLAIN_HOST), Connect) == [Connect()]
    effects = g.core.opened()
    assert sent(effects) == [
        Join(
            timestamp=g.now_ms(),
            session_id=SID,
            protocol_version=1,
            device=DeviceInfo("dev-a", "Ada", "terminal"),
        )
    ]
    assert len(effects) == 1
    assert state(g.core) is S.CONNECTING


def test_welcome_connects_and_pings_at_once() -> None:
    g = Guest()
    begin(g.core)
    g.core.opened()
    w = welcome("tok-9")
    effects = g.feed(w)
    assert effects[:2] == [StateChanged(S.CONNECTED), Welcomed(w, resumed=False)]
    assert sent(effects) == [
        Ping(timestamp=g.now_ms(), latency=None, sent_us=g.clock.monotonic_us())
    ]
    assert g.core.state is S.CONNECTED
    assert g.core.resume_token == "tok-9"
    assert g.core.attempt == 0


def test_member_messages_become_member_effects() -> None:
    g = Guest()
    g.connected()
    listed = [member("dev-host"), member("dev-a")]
    assert g.feed(MemberList(timestamp=T, members=listed)) == [MembersReplaced(listed)]
    b = member("dev-b")
    assert g.feed(MemberJoined(timestamp=T, member=b)) == [MembersUpdated([b])]
    b2 = member("dev-b", "reconnecting")
    assert g.feed(MemberUpdated(timestamp=T, members=[b2])) == [MembersUpdated([b2])]
    assert g.feed(MemberLeft(timestamp=T, member_id="dev-b", reason="timeout")) == [
        MemberGone("dev-b", "timeout")
    ]


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        '{"type": "MEMBER_LEFT", "timestamp": 1, "memberId": "x", "reason": "bored"}',
        encode(Heartbeat(timestamp=T)),  # a guest's message
        encode(
            Join(timestamp=T, session_id=SID, protocol_version=1, device=DeviceInfo("x", "X", "t"))
        ),
    ],
)
def test_bad_or_misdirected_frames_are_only_logged(frame: str) -> None:
    g = Guest()
    g.connected()
    effects = g.core.received(frame)
    assert [type(e) for e in effects] == [Log]
    assert effects[0].level == "warning"  # type: ignore[union-attr]
    assert g.core.state is S.CONNECTED


# Heartbeat and latency ----------------------------------------------------------


def through_burst(g: Guest, until: float) -> list[Message]:
    """Tick at every deadline up to `until` (monotonic s); what was sent meanwhile."""
    out: list[Message] = []
    while (deadline := g.core.next_deadline()) is not None and deadline <= until:
        g.clock.now = max(g.clock.now, deadline)
        out += sent(g.core.tick())
    return out


def test_a_burst_of_clock_probes_follows_the_welcome_then_heartbeats_keep_time() -> None:
    g = Guest()
    g.connected(interval=2000)
    t0 = g.clock.now
    assert g.core.next_deadline() == pytest.approx(t0 + 1 / 15)  # the clock burst
    burst = through_burst(g, t0 + 1.0)
    assert 13 <= len(burst) <= 15
    assert all(isinstance(m, Ping) and m.sent_us is not None for m in burst)
    # A probe is a sign of life: the next heartbeat is due an interval after the last.
    assert g.core.next_deadline() == pytest.approx(g.clock.now + 2.0)


def test_a_heartbeat_goes_when_a_probe_cannot() -> None:
    g = Guest()
    g.connected(interval=2000)
    t0 = g.clock.now
    through_burst(g, t0 + 1.5)
    last_probe = g.clock.now
    g.feed(Pong(timestamp=T, ping_timestamp=1, received_at=T))
    g.clock.now = last_probe + 2.0
    assert [type(m) for m in sent(g.core.tick())] == [Heartbeat]
    g.clock.now = last_probe + 4.0  # the idle probe is due, and so is the heartbeat
    g.core._pings[g.now_ms()] = g.clock.now  # but a PING already went out this millisecond
    assert sent(g.core.tick()) == [Heartbeat(timestamp=g.now_ms())]


def test_idle_heartbeats_alternate_between_a_heartbeat_and_a_probe() -> None:
    """While nothing plays, a probe goes every second heartbeat (its follow-up costs the
    idle traffic the PING it replaces would have), a plain HEARTBEAT between."""
    g = Guest()
    g.connected(interval=2000)
    t0 = g.clock.now
    through_burst(g, t0 + 1.5)
    last_probe = g.clock.now
    kinds = []
    for i in range(1, 7):
        g.feed(Pong(timestamp=T, ping_timestamp=1, received_at=T))  # keep the host alive
        g.clock.now = last_probe + 2.0 * i
        assert g.core.next_deadline() == pytest.approx(g.clock.now)
        (message,) = sent(g.core.tick())
        kinds.append(type(message))
        if isinstance(message, Ping):
            assert message == Ping(
                timestamp=g.now_ms(), latency=None, sent_us=g.clock.monotonic_us()
            )
        assert g.core.next_deadline() == pytest.approx(g.clock.now + 2.0)
    assert kinds == [Heartbeat, Ping] * 3


def settled(g: Guest, **welcome: Any) -> Ping:
    """Connect, answer the setup PING late, and return the probe the guest sends then."""
    (setup,) = sent(g.connected(**welcome))
    assert isinstance(setup, Ping)
    g.clock.advance(0.098)  # a first round trip inflated by the connection's set-up
    answer = g.feed(Pong(timestamp=T, ping_timestamp=setup.timestamp, received_at=T))
    assert of(answer, LatencyMeasured) == []  # it is no sample
    (probe,) = sent(answer)
    assert isinstance(probe, Ping)
    assert probe.latency is None
    assert g.core.latency is None
    return probe


def test_the_first_round_trip_of_a_connection_is_no_sample_and_a_probe_follows() -> None:
    g = Guest()
    probe = settled(g)
    g.clock.advance(0.002)
    (measured,) = g.feed(Pong(timestamp=T, ping_timestamp=probe.timestamp, received_at=T))
    assert measured == LatencyMeasured(pytest.approx(2.0))  # type: ignore[arg-type]


def test_latency_is_blank_while_the_link_is_down_and_restarts_on_resume() -> None:
    g = Guest(reconnect_attempts=3)
    probe = settled(g)
    g.clock.advance(0.002)
    g.feed(Pong(timestamp=T, ping_timestamp=probe.timestamp, received_at=T))
    assert g.core.latency == pytest.approx(2.0)
    lost = g.core.closed(None)
    assert LatencyMeasured(None) in lost
    assert g.core.latency is None
    settled(g, token="tok-1")  # the resumed link's set-up PING is skipped again


def test_latency_from_pong_uses_the_monotonic_clock_and_is_smoothed() -> None:
    g = Guest()
    first_ping = settled(g, interval=1000)
    t0 = g.clock.now
    g.clock.advance(0.010)
    # The host held the PING 2 ms; its clock is an hour off, which must not matter.
    skew = 3_600_000
    pong = Pong(
        timestamp=first_ping.timestamp + skew + 5,
        ping_timestamp=first_ping.timestamp,
        received_at=first_ping.timestamp + skew + 3,
    )
    (measured,) = g.feed(pong)
    assert isinstance(measured, LatencyMeasured)
    assert measured.latency == pytest.approx(8.0)
    assert g.core.latency == pytest.approx(8.0)
    # A replay of the same PONG is not a second sample.
    assert g.feed(pong) == []
    # The next PING reports the estimate; its PONG after 18 ms moves it by 30%.
    g.clock.now = t0 + 1.0
    pings = [m for m in sent(g.core.tick()) if isinstance(m, Ping)]
    assert len(pings) == 1
    assert pings[0].latency == pytest.approx(8.0)
    g.clock.advance(0.018)
    (measured,) = g.feed(
        Pong(
            timestamp=pings[0].timestamp,
            ping_timestamp=pings[0].timestamp,
            received_at=pings[0].timestamp,
        )
    )
    assert isinstance(measured, LatencyMeasured)
    assert measured.latency == pytest.approx(8.0 + LATENCY_SMOOTHING * (18.0 - 8.0))
    assert pytest.approx(0.3) == LATENCY_SMOOTHING


def test_a_pong_for_an_unknown_ping_is_ignored() -> None:
    g = Guest()
    g.connected()
    assert g.feed(Pong(timestamp=T, ping_timestamp=12345, received_at=T)) == []
    assert g.core.latency is None


def test_a_host_clock_going_back_does_not_make_latency_negative() -> None:
    g = Guest()
    p = settled(g)
    g.clock.advance(0.004)
    (measured,) = g.feed(Pong(timestamp=T - 50, ping_timestamp=p.timestamp, received_at=T))
    assert isinstance(measured, LatencyMeasured)
    assert measured.latency == pytest.approx(4.0)


def test_the_guest_drops_a_silent_host_after_the_heartbeat_timeout() -> None:
    g = Guest()
    g.connected(interval=5000, timeout=15000)
    # Signs of life go out, but the host says nothing.
    assert [type(m) for m in sent(g.advance(5))] == [Heartbeat]
    assert [type(m) for m in sent(g.advance(5))] == [Ping]
    assert g.core.next_deadline() == pytest.approx(g.clock.now + 5.0)
    assert of(g.advance(4.75), Disconnect) == []
    effects = g.advance(0.25)
    assert of(effects, Disconnect) == [Disconnect(CloseCode.HEARTBEAT_TIMEOUT, "host silent")]
    assert states(effects) == [S.RECONNECTING]
    assert sent(effects) == []
    # The socket's close arriving afterwards is not a second loss.
    assert g.core.closed(None) == []
    assert g.core.attempt == 1


def test_any_frame_from_the_host_keeps_it_alive() -> None:
    g = Guest()
    g.connected(timeout=3000, interval=1000)
    for _ in range(10):
        g.clock.advance(2.5)
        g.core.received("garbage counts as life")
        assert of(g.core.tick(), Disconnect) == []
    assert g.core.state is S.CONNECTED


# Reconnecting -------------------------------------------------------------------


@pytest.mark.parametrize("code", [None, 1006, 4002, 1011, 1008, 1009])
def test_abnormal_close_reconnects_with_the_resume_token(code: int | None) -> None:
    g = Guest()
    g.connected(token="tok-1")
    g.clock.advance(1)
    effects = g.core.closed(code, "gone")
    (change,) = of(effects, StateChanged)
    assert change.state is S.RECONNECTING
    assert (change.attempt, change.max_attempts) == (1, 3)
    assert change.next_attempt_at is not None
    delay = change.next_attempt_at - g.clock.now
    assert 1.5 <= delay <= 2.5
    assert of(effects, Connect) == []
    assert g.core.next_deadline() == change.next_attempt_at
    assert g.advance(delay - 0.01) == []
    g.clock.now = change.next_attempt_at
    assert g.core.tick() == [Connect()]
    assert g.core.tick() == []  # one Connect per attempt
    join = sent(g.core.opened())[0]
    assert isinstance(join, Join)
    assert join.resume_token == "tok-1"
    w = welcome("tok-1")
    effects = g.feed(w)
    assert effects[:2] == [StateChanged(S.CONNECTED), Welcomed(w, resumed=True)]
    assert g.core.attempt == 0
    assert g.core.ended is None


def test_reconnect_delays_stay_within_the_jitter_bounds() -> None:
    delays: list[float] = []
    for seed in range(40):
        g = Guest(seed=seed, reconnect_delay=1.0, reconnect_jitter=0.5)
        g.connected()
        (change,) = of(g.core.closed(None), StateChanged)
        assert change.next_attempt_at is not None
        delays.append(change.next_attempt_at - g.clock.now)
    assert all(0.5 <= d <= 1.5 for d in delays)
    assert max(delays) - min(delays) > 0.3  # the jitter is real
    # Same seed, same schedule.
    again = Guest(seed=3, reconnect_delay=1.0, reconnect_jitter=0.5)
    again.connected()
    (change,) = of(again.core.closed(None), StateChanged)
    assert change.next_attempt_at is not None
    assert change.next_attempt_at - again.clock.now == delays[3]


def test_all_attempts_failed_ends_in_failed_then_retry() -> None:
    g = Guest()
    g.connected(token="tok-1")
    effects = g.core.closed(1006)
    attempts = [c.attempt for c in of(effects, StateChanged)]
    for _ in range(3):
        change = of(effects, StateChanged)[-1]
        assert change.next_attempt_at is not None
        g.clock.now = change.next_attempt_at
        assert g.core.tick() == [Connect()]
        effects = g.core.connect_failed("refused")
        attempts += [c.attempt for c in of(effects, StateChanged)]
    assert attempts == [1, 2, 3, 3]
    assert of(effects, StateChanged) == [StateChanged(S.FAILED, 3)]
    assert g.core.state is S.FAILED
    assert g.core.failure == "refused"
    assert g.core.next_deadline() is None
    assert g.advance(60) == []
    assert g.core.ended is None  # the user may retry
    # retry() only from FAILED.
    effects = g.core.retry()
    assert effects == [StateChanged(S.CONNECTING, 0, 3), Connect()]
    assert g.core.retry() == []
    assert g.core.failure is None
    join = sent(g.core.opened())[0]
    assert isinstance(join, Join)
    assert join.resume_token == "tok-1"
    assert states(g.feed(welcome("tok-1"))) == [S.CONNECTED]


def test_an_attempt_that_opens_but_drops_before_welcome_counts() -> None:
    g = Guest()
    g.connected()
    g.core.closed(None)
    g.advance(3)
    g.core.opened()
    (change,) = of(g.core.closed(1006), StateChanged)
    assert (change.state, change.attempt) == (S.RECONNECTING, 2)


def test_a_reconnect_that_gets_a_fresh_welcome_is_not_a_resume() -> None:
    g = Guest()
    g.connected(token="tok-1")
    g.core.closed(None)
    g.advance(3)
    g.core.opened()
    w = welcome("tok-2")
    assert Welcomed(w, resumed=False) in g.feed(w)
    assert g.core.resume_token == "tok-2"


def test_no_welcome_within_the_connect_timeout() -> None:
    g = Guest(connect_timeout=4.0)
    begin(g.core)
    g.core.opened()
    assert g.core.next_deadline() == pytest.approx(g.clock.now + 4.0)
    assert g.advance(3.75) == []
    effects = g.advance(0.25)
    assert of(effects, Disconnect) != []
    assert states(effects) == [S.FAILED]  # no token yet: nothing to resume


def test_initial_connect_failure_without_a_token_is_failed() -> None:
    g = Guest()
    begin(g.core)
    effects = g.core.connect_failed("connection refused")
    assert states(effects) == [S.FAILED]
    assert of(effects, Connect) == []
    assert g.core.failure == "connection refused"
    assert g.advance(10) == []
    assert g.core.next_deadline() is None


def test_an_abnormal_close_before_any_welcome_is_failed() -> None:
    g = Guest()
    begin(g.core)
    g.core.opened()
    assert states(g.core.closed(1006)) == [S.FAILED]


# Ending -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "end"),
    [(1000, "closed"), (1001, "closed"), (4000, "kicked"), (4001, "refused")],
)
def test_closes_that_end_the_membership(code: int, end: str) -> None:
    g = Guest()
    g.connected()
    effects = g.core.closed(code, "because")
    assert of(effects, Connect) == []
    assert states(effects) == [S.DISCONNECTED]
    (ended,) = of(effects, Ended)
    assert ended.code == end
    assert g.core.ended == ended
    assert g.core.state is S.DISCONNECTED
    assert g.core.next_deadline() is None
    assert g.advance(30) == []
    assert g.core.start() == []
    assert g.core.retry() == []


def test_kicked_ends_with_the_reason() -> None:
    g = Guest()
    g.connected()
    effects = g.feed(Kicked(timestamp=T, reason="too loud"))
    (ended,) = of(effects, Ended)
    assert ended.code == "kicked"
    assert "too loud" in ended.reason
    assert g.core.closed(CloseCode.KICKED) == []
    assert g.advance(30) == []


def test_session_closed_ends_with_the_reason() -> None:
    g = Guest()
    g.connected()
    effects = g.feed(SessionClosed(timestamp=T, reason="pizza time"))
    (ended,) = of(effects, Ended)
    assert ended.code == "closed"
    assert ended.reason == "pizza time"
    assert g.core.closed(CloseCode.GOING_AWAY) == []
    assert g.core.closed(None) == []
    assert g.advance(30) == []


def test_an_error_before_welcome_refuses_the_join() -> None:
    g = Guest()
    begin(g.core)
    g.core.opened()
    effects = g.feed(Error(timestamp=T, code=ErrorCode.SESSION_FULL, message="10 of 10"))
    assert of(effects, Disconnect) != []
    (ended,) = of(effects, Ended)
    assert ended.code == "refused"
    assert ended.reason == "Join refused: 10 of 10"  # the host's words; no raw code
    assert g.core.closed(CloseCode.JOIN_REFUSED, "SESSION_FULL") == []
    assert g.advance(30) == []


def test_an_error_on_a_resume_attempt_refuses_too() -> None:
    g = Guest()
    g.connected()
    g.core.closed(None)
    g.advance(3)
    g.core.opened()
    effects = g.feed(Error(timestamp=T, code=ErrorCode.UNAUTHORIZED, message="banned"))
    assert of(effects, Ended)[0].code == "refused"


def test_an_error_after_welcome_is_only_logged() -> None:
    g = Guest()
    g.connected()
    effects = g.feed(Error(timestamp=T, code=ErrorCode.INVALID_MESSAGE, message="huh"))
    assert [type(e) for e in effects] == [Log]
    assert g.core.state is S.CONNECTED
    assert g.core.ended is None


def test_leave_when_connected_sends_leave_then_closes_1000() -> None:
    g = Guest()
    g.connected()
    effects = g.core.leave("bye now")
    assert effects[:2] == [
        Transmit(Leave(timestamp=g.now_ms(), reason="bye now")),
        Disconnect(CloseCode.NORMAL, "left"),
    ]
    (ended,) = of(effects, Ended)
    assert ended.code == "left"
    assert g.core.closed(1000) == []
    assert g.core.leave() == []
    assert g.advance(30) == []


def test_leave_while_reconnecting_sends_nothing_and_stops_retrying() -> None:
    g = Guest()
    g.connected()
    g.core.closed(None)
    effects = g.core.leave()
    assert sent(effects) == []
    assert of(effects, Disconnect) == []
    assert of(effects, Ended)[0].code == "left"
    assert g.advance(30) == []


def test_leave_before_welcome_closes_without_leave() -> None:
    g = Guest()
    begin(g.core)
    g.core.opened()
    effects = g.core.leave()
    assert sent(effects) == []
    assert of(effects, Disconnect) == [Disconnect(CloseCode.NORMAL, "left")]


def test_next_deadline_in_each_state() -> None:
    g = Guest(connect_timeout=10.0)
    assert g.core.next_deadline() is None  # DISCONNECTED
    begin(g.core)
    assert g.core.next_deadline() is None  # the adapter times the handshake
    g.core.opened()
    assert g.core.next_deadline() == pytest.approx(g.clock.now + 10.0)
    g.feed(welcome(interval=5000, timeout=7000))
    assert g.core.next_deadline() == pytest.approx(g.clock.now + 1 / 15)  # the clock burst
    t0 = g.clock.now
    through_burst(g, t0 + 1.5)
    last_probe = g.clock.now
    assert g.core.next_deadline() == pytest.approx(last_probe + 5.0)  # heartbeat
    g.advance(5)
    g.clock.advance(1)
    # The host last spoke at t0: its 7 s silence deadline beats the probe due at +10 s.
    assert g.core.next_deadline() == pytest.approx(t0 + 7.0)
    g.core.received("x")
    assert g.core.next_deadline() == pytest.approx(last_probe + 10.0)
    (change,) = of(g.core.closed(None), StateChanged)
    assert g.core.next_deadline() == change.next_attempt_at
    g.clock.now = change.next_attempt_at or 0.0
    g.core.tick()
    assert g.core.next_deadline() is None  # connecting again
    g.core.leave()
    assert g.core.next_deadline() is None


# Host and guests together, in memory ---------------------------------------------


@dataclass
class Peer:
    core: GuestSession
    conn: ConnId | None = None
    members: dict[str, MemberInfo] = field(default_factory=dict)
    ended: Ended | None = None


class Network:
    """Routes effects between one HostSession and several GuestSessions, FIFO."""

    def __init__(self, **host_overrides: Any) -> None:
        self.clock = ManualClock()
        cfg = HostConfig(
            session_name="Friday", host_name="Grace", host_id="dev-host", allow_unproven=True
        )  # readable ids (`dev-a`) cannot be proven; proofs are tested on their own
        self.host = HostSession(replace(cfg, **host_overrides), SID, self.clock)
        self.peers: dict[str, Peer] = {}
        self.by_conn: dict[ConnId, str] = {}
        self.next_conn = 1
        self.queue: deque[tuple[str, Any]] = deque()
        self.link_up: dict[str, bool] = {}

    def add(self, device_id: str, seed: int) -> Peer:
        cfg = GuestConfig(address="mem", name=device_id.title(), device_id=device_id)
        peer = Peer(GuestSession(cfg, SID, self.clock, random.Random(seed)))
        self.peers[device_id] = peer
        self.link_up[device_id] = True
        self.guest(device_id, begin(peer.core))
        return peer

    # Effects -> events
    def guest(self, name: str, effects: list[GuestEffect]) -> None:
        peer = self.peers[name]
        for e in effects:
            match e:
                case Connect():
                    self.queue.append(("connect", name))
                case Transmit(message=message) if peer.conn is not None:
                    self.queue.append(("to_host", (peer.conn, encode(message))))
                case Disconnect():
                    if peer.conn is not None:
                        conn, peer.conn = peer.conn, None
                        self.by_conn.pop(conn, None)
                        self.queue.append(("host_lost", conn))
                case MembersReplaced(members=ms):
                    peer.members = {m.id: m for m in ms}
                case MembersUpdated(members=ms):
                    peer.members.update({m.id: m for m in ms})
                case MemberGone(member_id=mid):
                    peer.members.pop(mid, None)
                case Ended():
                    peer.ended = e

    def host_fx(self, effects: list[HostEffect]) -> None:
        for e in effects:
            match e:
                case Send(conn=conn, message=message):
                    self.queue.append(("to_guest", (conn, encode(message))))
                case Broadcast(conns=conns, message=message):
                    for conn in conns:
                        self.queue.append(("to_guest", (conn, encode(message))))
                case Close(conn=conn, code=code, reason=reason):
                    self.queue.append(("close", (conn, code, reason)))

    def run(self) -> None:
        steps = 0
        while self.queue:
            steps += 1
            assert steps < 100_000
            kind, arg = self.queue.popleft()
            if kind == "connect":
                name = arg
                if not self.link_up[name]:
                    self.guest(name, self.peers[name].core.connect_failed("unreachable"))
                    continue
                conn, self.next_conn = self.next_conn, self.next_conn + 1
                self.peers[name].conn = conn
                self.by_conn[conn] = name
                self.host_fx(self.host.connected(conn, name))
                self.guest(name, self.peers[name].core.opened())
            elif kind == "to_host":
                conn, data = arg
                self.host_fx(self.host.received(conn, data))
            elif kind == "to_guest":
                conn, data = arg
                if conn in self.by_conn:
                    name = self.by_conn[conn]
                    self.guest(name, self.peers[name].core.received(data))
            elif kind == "close":
                conn, code, reason = arg
                self.drop(conn, code, reason)
            elif kind == "host_lost":
                self.host_fx(self.host.disconnected(arg))

    def drop(self, conn: ConnId, code: int | None, reason: str = "") -> None:
        """The socket `conn` is gone, with a close frame `code` or none."""
        name = self.by_conn.pop(conn, None)
        self.host_fx(self.host.disconnected(conn))
        if name is not None and self.peers[name].conn == conn:
            self.peers[name].conn = None
            self.guest(name, self.peers[name].core.closed(code, reason))

    def step(self, seconds: float) -> None:
        """Let time pass in small ticks, as the adapters would."""
        end = self.clock.now + seconds
        while self.clock.now < end - 1e-9:
            self.clock.advance(min(0.25, end - self.clock.now))
            self.host_fx(self.host.tick())
            for name, peer in self.peers.items():
                self.guest(name, peer.core.tick())
            self.run()

    def host_view(self) -> dict[str, MemberInfo]:
        return {m.id: m for m in self.host.members}

    def live(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.ended is None and p.conn is not None]


def test_host_and_guests_in_memory_agree_on_the_member_list() -> None:
    net = Network(heartbeat_interval=1.0, heartbeat_timeout=3.0)
    for i, name in enumerate(["dev-a", "dev-b", "dev-c", "dev-d", "dev-e"]):
        net.add(name, seed=i)
        net.run()
    assert [p.core.state for p in net.peers.values()] == [S.CONNECTED] * 5
    for peer in net.peers.values():
        assert peer.members == net.host_view()
    net.step(2.5)  # pings carry latencies to the host and back out in MEMBER_UPDATED
    # dev-b leaves, dev-c is kicked, dev-d's link drops and it resumes.
    net.guest("dev-b", net.peers["dev-b"].core.leave())
    net.run()
    net.host_fx(net.host.kick("dev-c"))
    net.run()
    d = net.peers["dev-d"]
    assert d.conn is not None
    d_joined_at = net.host_view()["dev-d"].joined_at
    a_seen: list[GuestEffect] = []
    a_core = net.peers["dev-a"].core
    a_received = a_core.received

    def spy(data: str | bytes) -> list[GuestEffect]:
        effects = a_received(data)
        a_seen.extend(effects)
        return effects

    a_core.received = spy  # type: ignore[method-assign]
    net.drop(d.conn, None)
    net.run()
    assert net.host_view()["dev-d"].connection_status == "reconnecting"
    net.step(1.0)
    assert net.peers["dev-a"].members["dev-d"].connection_status == "reconnecting"
    net.step(2.0)  # within the 3 s hold: the reconnect attempt (about 2 s) resumes
    assert d.core.state is S.CONNECTED
    assert net.host_view()["dev-d"].connection_status == "connected"
    assert net.host_view()["dev-d"].joined_at == d_joined_at
    # dev-a saw dev-d go reconnecting and back, never leave or join again.
    assert [
        (m.connection_status)
        for e in of(a_seen, MembersUpdated)
        for m in e.members
        if m.id == "dev-d"
    ] == ["reconnecting", "connected"]
    assert not [e for e in a_seen if isinstance(e, MemberGone) and e.member_id == "dev-d"]
    # dev-e's link freezes for good: the host times it out, dev-e gives up.
    net.link_up["dev-e"] = False
    e = net.peers["dev-e"]
    assert e.conn is not None
    net.by_conn.pop(e.conn)  # frames to dev-e are lost from now on
    e_conn, e.conn = e.conn, None
    net.step(1.75)  # its last heartbeat was at most 1 s before the freeze
    assert "dev-e" in net.host_view()  # not yet 3 s of silence
    assert e.core.state is S.CONNECTED
    net.step(12.0)
    assert net.host.member_of(e_conn) is None

    assert net.peers["dev-b"].ended is not None
    assert net.peers["dev-b"].ended.code == "left"
    assert net.peers["dev-c"].ended is not None
    assert net.peers["dev-c"].ended.code == "kicked"
    assert state(e.core) is S.FAILED
    assert sorted(net.host_view()) == ["dev-a", "dev-d", "dev-host"]
    live = net.live()
    assert [p.core.config.device_id for p in live] == ["dev-a", "dev-d"]
    for peer in live:
        assert peer.members == net.host_view(), peer.core.config.device_id
    # Latencies were measured, reported and shared (the in-memory round trip is 0 ms).
    assert all(p.core.latency == 0.0 for p in live)
    assert all(m.latency == 0.0 for m in net.host.members if not m.is_host)


def test_many_guests_join_and_every_list_is_identical() -> None:
    net = Network(max_members=30)
    for i in range(25):
        net.add(f"dev-{i:02}", seed=i)
    net.run()  # every JOIN in flight at once
    assert len(net.host.members) == 26
    views = [p.members for p in net.peers.values()]
    assert len(views) == 25
    assert all(v == net.host_view() for v in views)


# A host cannot make a guest hold more members than the session allows ------------


def test_a_member_list_longer_than_the_maximum_is_cut_and_logged_once() -> None:
    g = Guest()
    g.connected()  # WELCOME says at most 10 members
    effects = g.feed(MemberList(timestamp=T, members=[member(f"m{i}") for i in range(30)]))
    replaced = of(effects, MembersReplaced)
    assert [m.id for m in replaced[0].members] == [f"m{i}" for i in range(10)]
    assert len(of(effects, Log)) == 1
    assert "maximum of 10" in of(effects, Log)[0].text
    # More joins past the maximum are refused, and not logged again.
    joined = g.feed(MemberJoined(timestamp=T, member=member("m99")))
    assert joined == []
    updated = g.feed(
        MemberUpdated(timestamp=T, members=[member("m1", "reconnecting"), member("x")])
    )
    assert of(updated, MembersUpdated)[0].members == [member("m1", "reconnecting")]
    assert of(updated, Log) == []


def test_a_place_freed_by_a_leave_can_be_taken_and_unknown_leaves_are_ignored() -> None:
    g = Guest()
    g.connected()
    g.feed(MemberList(timestamp=T, members=[member(f"m{i}") for i in range(10)]))
    assert g.feed(MemberLeft(timestamp=T, member_id="nobody", reason="left")) == []
    assert of(g.feed(MemberLeft(timestamp=T, member_id="m3", reason="left")), MemberGone)
    assert of(g.feed(MemberJoined(timestamp=T, member=member("new"))), MembersUpdated)
    assert of(g.feed(MemberJoined(timestamp=T, member=member("newer"))), MembersUpdated) == []


def test_a_plain_leave_gives_no_reason_so_the_host_says_only_left() -> None:
    g = Guest()
    g.connected()
    (leave,) = [m for m in sent(g.core.leave()) if isinstance(m, Leave)]
    assert leave.reason is None
    config = HostConfig("S", "Grace", "dev-host", allow_unproven=True)  # an unsigned JOIN
    host = HostSession(config, SID, ManualClock())
    host.connected(1)
    host.received(
        1,
        encode(
            Join(
                timestamp=T,
                session_id=SID,
                protocol_version=1,
                device=DeviceInfo("dev-bob", "Bob", "terminal"),
            )
        ),
    )
    logs = [e.text for e in host.received(1, encode(leave)) if isinstance(e, Log)]
    assert logs == ["Bob left"]


def test_a_refusal_without_a_text_is_said_in_words_not_codes() -> None:
    g = Guest()
    begin(g.core)
    g.core.opened()
    effects = g.feed(Error(timestamp=T, code=ErrorCode.RATE_LIMITED, message=""))
    (ended,) = of(effects, Ended)
    assert ended.reason == "Join refused: too many attempts; wait a minute"


def clock_pong(ping: Ping) -> Pong:
    """The host's answer with the session clock's stamps: 100 µs each way, session =
    local - 1 s."""
    assert ping.sent_us is not None
    at = ping.sent_us - 1_000_000 + 100
    return Pong(
        timestamp=T,
        ping_timestamp=ping.timestamp,
        received_at=T,
        ping_sent_us=ping.sent_us,
        received_us=at,
        sent_us=at,
    )


def pings(effects: list[GuestEffect]) -> list[Ping]:
    return [m for m in sent(effects) if isinstance(m, Ping)]


def test_a_probe_is_followed_at_once_by_a_second_that_finds_both_ends_awake() -> None:
    g = Guest()
    (setup,) = pings(g.connected())
    g.clock.advance(0.098)
    (first,) = pings(g.feed(clock_pong(setup)))  # the set-up round trip: no sample
    assert g.core.clock_estimator.estimate() is None
    g.clock.advance(0.0002)
    answer = g.feed(clock_pong(first))
    assert pings(answer) == []  # a follow-up has no follow-up of its own
    assert len(of(answer, ClockEstimated)) == 1
    g.clock.now = g.core.next_deadline() or 0.0
    (lead,) = pings(g.core.tick())
    due = g.core.next_deadline()
    g.clock.advance(0.0012)  # the PONG comes back in the next millisecond, where two
    g.core._pings[g.now_ms()] = g.clock.now  # other PINGs are in flight (one of them
    g.core._pings[g.now_ms() + 1] = g.clock.now  # stamped a ms ahead)
    answer = g.feed(clock_pong(lead))
    (follow_up,) = pings(answer)
    assert follow_up.sent_us == g.clock.monotonic_us()  # sent as the PONG arrived
    assert follow_up.timestamp == g.now_ms() + 2  # the next free key for its PONG
    assert lead.latency is not None
    assert follow_up.latency is None  # the host has it from the lead
    assert len(of(answer, ClockEstimated)) == 1  # the lead is a sample too
    assert g.core.next_deadline() == due  # and it does not move the probe schedule
    g.clock.advance(0.0002)
    answer = g.feed(clock_pong(follow_up))
    assert pings(answer) == []
    assert len(of(answer, LatencyMeasured)) == 1
    estimate = g.core.clock_estimator.estimate()
    assert estimate is not None
    assert estimate.samples == 3
    assert estimate.offset_us == pytest.approx(-1_000_000, abs=5)  # from the quick ones


def test_no_follow_up_without_the_session_clock() -> None:
    phase1 = Guest()
    (setup,) = pings(phase1.connected())
    (probe,) = pings(phase1.feed(Pong(timestamp=T, ping_timestamp=setup.timestamp, received_at=T)))
    answer = phase1.feed(Pong(timestamp=T, ping_timestamp=probe.timestamp, received_at=T))
    assert pings(answer) == []  # a Phase 1 host stamps nothing: one PING is enough
    assert len(of(answer, LatencyMeasured)) == 1
    remote = Guest(clock_burst=0)  # a remote control needs no sample-accurate clock
    (setup,) = pings(remote.connected())
    (probe,) = pings(remote.feed(clock_pong(setup)))  # the set-up round trip is no sample
    assert pings(remote.feed(clock_pong(probe))) == []
    (probe,) = pings(remote.advance(10.0))  # the idle probe
    assert pings(remote.feed(clock_pong(probe))) == []


def test_the_clock_uncertainty_is_told_to_the_host_only_when_it_moved() -> None:
    g = Guest()
    g.connected()
    told: list[float | None] = []
    pending: list[Ping] = []
    for _ in range(40):  # the burst: each PONG a clean sample, 100 µs each way
        pending += [m for m in sent(g.core.tick()) if isinstance(m, Ping)]
        while pending:  # leads and the follow-ups their PONGs bring
            ping = pending.pop(0)
            told.append(ping.clock_uncertainty_us)
            assert ping.sent_us is not None
            g.clock.advance(0.0002)
            pong = Pong(
                timestamp=T,
                ping_timestamp=ping.timestamp,
                received_at=T,
                ping_sent_us=ping.sent_us,
                received_us=ping.sent_us - 1_000_000 + 100,
                sent_us=ping.sent_us - 1_000_000 + 100,
            )
            answer = g.core.received(encode(pong), at_us=g.clock.monotonic_us())
            pending += [m for m in sent(answer) if isinstance(m, Ping)]
        g.clock.advance(1 / 30)
    reported = [u for u in told if u is not None]
    assert reported  # the host hears it once there is an estimate
    assert len(reported) < len(told) // 2  # and not again in every PING while it holds
