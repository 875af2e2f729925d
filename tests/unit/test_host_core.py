"""The host's session rules (issue 3, host behaviour), driven with a fake clock, no sockets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

import pytest

from loudsync_tui.config import HostConfig
from loudsync_tui.core.clock import ManualClock
from loudsync_tui.core.effects import (
    BansChanged,
    Broadcast,
    Close,
    ConnId,
    HostEffect,
    MemberAdded,
    MemberChanged,
    MemberRemoved,
    Send,
)
from loudsync_tui.core.host import HostSession, connection_ids
from loudsync_tui.core.latency import latency_changed
from loudsync_tui.protocol import (
    CloseCode,
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

SID = "k3v9q2"
HOST_ID = "dev-host"
T = 1_764_086_400_000
M = TypeVar("M")


# Helpers ----------------------------------------------------------------------


class Host:
    """A HostSession on a ManualClock, with shorthands for the inputs."""

    def __init__(self, **overrides: Any) -> None:
        self.clock = ManualClock()
        # Readable ids (`dev-a`) cannot be proven: the rules other than identity proofs are
        # tested with unproven guests allowed; the proof tests turn this off.
        self.config = replace(
            HostConfig(
                session_name="Friday listening",
                host_name="Grace",
                host_id=HOST_ID,
                allow_unproven=True,
            ),
            **overrides,
        )
        self.core = HostSession(self.config, SID, self.clock)
        self.tokens: dict[str, str] = {}

    def open(self, conn: ConnId) -> list[HostEffect]:
        return self.core.connected(conn, f"10.0.0.{conn}:5000")

    def send(self, conn: ConnId, message: Message | str | bytes) -> list[HostEffect]:
        data = message if isinstance(message, str | bytes) else encode(message)
        return self.core.received(conn, data)

    def join(
        self,
        conn: ConnId,
        device_id: str,
        *,
        name: str | None = None,
        token: str | None = None,
        session_id: str = SID,
        version: int = 1,
        open_first: bool = True,
        heard: bool = True,
    ) -> list[HostEffect]:
        """JOIN; with `heard`, then one HEARTBEAT, as a real guest PINGs on WELCOME."""
        if open_first:
            assert self.open(conn) == []
        effects = self.send(conn, join_msg(device_id, name, token, session_id, version))
        welcomes = [m for m in to(effects, conn) if isinstance(m, Welcome)]
        if welcomes:
            self.tokens[device_id] = welcomes[0].resume_token
            if heard:
                assert self.send(conn, Heartbeat(timestamp=T)) == []
        return effects

    def advance(self, seconds: float) -> list[HostEffect]:
        self.clock.advance(seconds)
        return self.core.tick()

    def member(self, member_id: str) -> MemberInfo | None:
        return next((m for m in self.core.members if m.id == member_id), None)

    @property
    def ids(self) -> list[str]:
        return [m.id for m in self.core.members]


def join_msg(
    device_id: str,
    name: str | None = None,
    token: str | None = None,
    session_id: str = SID,
    version: int = 1,
) -> Join:
    return Join(
        timestamp=T,
        session_id=session_id,
        protocol_version=version,
        device=DeviceInfo(device_id, name or device_id.title(), "terminal"),
        resume_token=token,
    )


def to(effects: list[HostEffect], conn: ConnId) -> list[Message]:
    """The messages addressed to `conn`, in order, whether sent or broadcast."""
    out: list[Message] = []
    for e in effects:
        if (isinstance(e, Send) and e.conn == conn) or (
            isinstance(e, Broadcast) and conn in e.conns
        ):
            out.append(e.message)
    return out


def of(effects: list[Any], kind: type[M]) -> list[M]:
    return [e for e in effects if isinstance(e, kind)]


def closes(effects: list[HostEffect]) -> dict[ConnId, int]:
    return {e.conn: e.code for e in of(effects, Close)}


def assert_refused(effects: list[HostEffect], conn: ConnId, code: ErrorCode) -> Error:
    """ERROR `code` to `conn`, then close 4001, and nothing to anyone else."""
    wire = [e for e in effects if isinstance(e, Send | Broadcast | Close)]
    assert len(wire) == 2, wire
    send, close = wire
    assert isinstance(send, Send)
    assert send.conn == conn
    assert isinstance(send.message, Error)
    assert send.message.code == code
    assert close == Close(conn, CloseCode.JOIN_REFUSED, code.value)
    assert connection_ids(effects) == {conn}
    assert not of(effects, MemberAdded)
    return send.message


def ping(latency: float | None = None, timestamp: int = T) -> Ping:
    return Ping(timestamp=timestamp, latency=latency)


def hb() -> Heartbeat:
    return Heartbeat(timestamp=T)


# latency_changed ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        (None, None, False),
        (None, 3.2, True),
        (3.2, None, True),
        (100.0, 100.0, False),
        (100.0, 115.0, False),  # 15 ms but only 15%
        (100.0, 121.0, True),  # 21 ms and 21%
        (100.0, 79.0, True),  # downwards too
        (10.0, 14.0, False),  # 40% but only 4 ms
        (10.0, 15.5, True),  # 5.5 ms and 55%
        (20.0, 25.0, False),  # exactly 5 ms is not more than 5 ms
        (50.0, 60.0, False),  # exactly 20% is not more than 20%
    ],
)
def test_latency_changed(old: float | None, new: float | None, changed: bool) -> None:
    assert latency_changed(old, new) is changed


# Rule 1: JOIN checks ------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        "not json at all",
        "[1, 2]",
        '"JOIN"',
        '{"timestamp": 1}',
        '{"type": "NOPE", "timestamp": 1}',
        '{"type": "JOIN", "timestamp": 1}',
        '{"type": "JOIN", "timestamp": 1, "sessionId": "k3v9q2", "protocolVersion": 1,'
        ' "device": {"id": "dev-a", "name": 7, "type": "terminal"}}',
        '{"type": "JOIN", "timestamp": 1, "sessionId": "k3v9q2", "protocolVersion": 1,'
        ' "device": {"id": "", "name": "Ada", "type": "terminal"}}',
        '{"type": "JOIN", "timestamp": 1, "sessionId": "k3v9q2", "protocolVersion": 1,'
        ' "device": {"id": "dev-a", "name": "' + "x" * 65 + '", "type": "terminal"}}',
    ],
)
def test_malformed_join_is_invalid_message(frame: str) -> None:
    h = Host()
    h.open(1)
    assert_refused(h.send(1, frame), 1, ErrorCode.INVALID_MESSAGE)
    assert h.ids == [HOST_ID]


def test_binary_first_frame_is_refused() -> None:
    h = Host()
    h.open(1)
    raw = encode(join_msg("dev-a")).encode()
    assert_refused(h.send(1, raw), 1, ErrorCode.INVALID_MESSAGE)
    assert h.ids == [HOST_ID]


@pytest.mark.parametrize("first", [hb(), ping(), Leave(timestamp=T, reason="bye")])
def test_a_first_frame_other_than_join_is_refused(first: Message) -> None:
    h = Host()
    h.open(1)
    error = assert_refused(h.send(1, first), 1, ErrorCode.INVALID_MESSAGE)
    assert "JOIN" in error.message


def test_unsupported_version_is_version_mismatch_with_supported_versions() -> None:
    h = Host()
    error = assert_refused(h.join(1, "dev-a", version=2), 1, ErrorCode.VERSION_MISMATCH)
    assert error.details == {"supported": [1]}
    assert h.ids == [HOST_ID]


def test_wrong_session_id_is_session_not_found() -> None:
    h = Host()
    assert_refused(h.join(1, "dev-a", session_id="other"), 1, ErrorCode.SESSION_NOT_FOUND)


def test_banned_device_is_unauthorized() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.core.kick("dev-a")
    h.core.disconnected(1)
    assert_refused(h.join(2, "dev-a"), 2, ErrorCode.UNAUTHORIZED)
    assert h.ids == [HOST_ID]


def test_same_device_id_without_token_is_already_joined() -> None:
    h = Host()
    h.join(1, "dev-a")
    assert_refused(h.join(2, "dev-a"), 2, ErrorCode.ALREADY_JOINED)
    # The member on the first connection is untouched and still answered.
    assert h.core.member_of(1) == "dev-a"
    assert [type(m) for m in to(h.send(1, ping()), 1)] == [Pong]


def test_same_device_id_with_a_wrong_token_is_already_joined() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    assert_refused(h.join(3, "dev-a", token=h.tokens["dev-b"]), 3, ErrorCode.ALREADY_JOINED)
    assert_refused(h.join(4, "dev-a", token="forged"), 4, ErrorCode.ALREADY_JOINED)
    assert h.core.member_of(1) == "dev-a"


def test_the_host_device_id_cannot_join() -> None:
    h = Host()
    assert_refused(h.join(1, HOST_ID), 1, ErrorCode.ALREADY_JOINED)


def test_full_session_counts_the_host() -> None:
    h = Host(max_members=3)
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    error = assert_refused(h.join(3, "dev-c"), 3, ErrorCode.SESSION_FULL)
    assert error.details == {"maxMembers": 3}
    assert h.ids == [HOST_ID, "dev-a", "dev-b"]


def test_a_session_of_two_takes_one_guest() -> None:
    h = Host(max_members=2)
    assert of(to(h.join(1, "dev-a"), 1), Welcome)
    assert_refused(h.join(2, "dev-b"), 2, ErrorCode.SESSION_FULL)


def test_a_place_freed_by_leave_can_be_taken() -> None:
    h = Host(max_members=2)
    h.join(1, "dev-a")
    h.send(1, Leave(timestamp=T))
    assert of(to(h.join(2, "dev-b"), 2), Welcome)


def _order_setup() -> Host:
    """max 2: dev-b banned, dev-a joined, so the session is full."""
    h = Host(max_members=2)
    h.join(1, "dev-b")
    h.core.kick("dev-b")
    h.core.disconnected(1)
    h.join(2, "dev-a")
    assert h.ids == [HOST_ID, "dev-a"]
    return h


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        # malformed and a bad version, wrong session, banned, full
        (
            '{"type": "JOIN", "timestamp": 1, "sessionId": "nope", "protocolVersion": 9,'
            ' "device": {"id": "dev-b", "name": 5, "type": "terminal"}}',
            ErrorCode.INVALID_MESSAGE,
        ),
        # bad version and wrong session, banned, full
        (encode(join_msg("dev-b", session_id="nope", version=9)), ErrorCode.VERSION_MISMATCH),
        # wrong session and banned, full
        (encode(join_msg("dev-b", session_id="nope")), ErrorCode.SESSION_NOT_FOUND),
        # banned and full
        (encode(join_msg("dev-b")), ErrorCode.UNAUTHORIZED),
        # already joined and full
        (encode(join_msg("dev-a")), ErrorCode.ALREADY_JOINED),
        # only full
        (encode(join_msg("dev-c")), ErrorCode.SESSION_FULL),
    ],
)
def test_join_checks_answer_the_first_failing_check(frame: str, expected: ErrorCode) -> None:
    h = _order_setup()
    h.open(9)
    assert_refused(h.send(9, frame), 9, expected)


def test_a_refused_connection_ignores_further_frames_and_times_out_nothing() -> None:
    h = Host()
    h.join(1, "dev-a", version=2)
    assert h.send(1, join_msg("dev-a")) == []
    assert h.ids == [HOST_ID]
    assert closes(h.advance(10)) == {}
    assert h.core.disconnected(1) == []


# Rule 2: a good JOIN ------------------------------------------------------------


def test_good_join_gets_welcome_then_member_list() -> None:
    h = Host()
    h.clock.advance(3)
    effects = h.join(1, "dev-a", name="Ada")
    msgs = to(effects, 1)
    assert [type(m) for m in msgs] == [Welcome, MemberList]
    welcome, member_list = msgs
    assert isinstance(welcome, Welcome)
    assert isinstance(member_list, MemberList)
    assert welcome.client_id == "dev-a"
    assert len(welcome.resume_token) >= 16
    assert welcome.heartbeat_interval == 5000
    assert welcome.heartbeat_timeout == 15000
    assert welcome.session == SessionInfo(
        id=SID,
        name="Friday listening",
        host_id=HOST_ID,
        host_name="Grace",
        max_members=10,
        member_count=2,
        protocol_version=1,
    )
    host_row, ada = member_list.members
    assert host_row == MemberInfo(HOST_ID, "Grace", True, "connected", T, None)
    assert ada == MemberInfo("dev-a", "Ada", False, "connected", T + 3000, None, proven=False)
    assert h.core.members == member_list.members
    # Nobody else to tell; the adapter hears about the member.
    assert connection_ids(effects) == {1}
    # With the IP it came from, for the host's kick dialog (never sent to guests).
    assert of(effects, MemberAdded) == [MemberAdded(ada, "terminal", "10.0.0.1")]


def test_member_joined_goes_to_the_others_only() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    effects = h.join(3, "dev-c", name="Cy")
    assert [type(m) for m in to(effects, 3)] == [Welcome, MemberList]
    broadcasts = of(effects, Broadcast)
    assert len(broadcasts) == 1
    assert set(broadcasts[0].conns) == {1, 2}
    joined = broadcasts[0].message
    assert isinstance(joined, MemberJoined)
    assert joined.member.id == "dev-c"
    assert joined.member.name == "Cy"
    member_list = to(effects, 3)[1]
    assert isinstance(member_list, MemberList)
    assert [m.id for m in member_list.members] == [HOST_ID, "dev-a", "dev-b", "dev-c"]
    assert [m.is_host for m in member_list.members] == [True, False, False, False]


def test_every_member_gets_its_own_resume_token() -> None:
    h = Host()
    for i, name in enumerate(["dev-a", "dev-b", "dev-c"], start=1):
        h.join(i, name)
    assert len(set(h.tokens.values())) == 3


def test_member_joined_skips_connections_that_are_not_members() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.open(2)  # connected, no JOIN yet
    effects = h.join(3, "dev-c")
    assert connection_ids(effects) == {1, 3}


# Rule 3: resume -----------------------------------------------------------------


def test_resume_while_the_old_connection_is_open() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    before = h.member("dev-a")
    h.clock.advance(2)
    effects = h.join(3, "dev-a", token=h.tokens["dev-a"])
    msgs = to(effects, 3)
    assert [type(m) for m in msgs] == [Welcome, MemberList]
    assert isinstance(msgs[0], Welcome)
    assert msgs[0].resume_token == h.tokens["dev-a"]
    assert 1 in closes(effects)  # the old connection is closed
    assert to(effects, 2) == []  # no churn for the others
    assert not of(effects, MemberAdded)
    assert not of(effects, MemberRemoved)
    assert h.member("dev-a") == before  # same member, same joinedAt
    assert h.ids == [HOST_ID, "dev-a", "dev-b"]
    assert h.core.member_of(3) == "dev-a"
    assert h.core.member_of(1) is None
    # The old connection is dead to the core: frames ignored, its end changes nothing.
    assert h.send(1, ping()) == []
    assert h.core.disconnected(1) == []
    assert h.member("dev-a") == before
    assert [type(m) for m in to(h.send(3, ping()), 3)] == [Pong]
    # ...and no MEMBER_UPDATED follows, as the status never changed.
    assert of(h.advance(5), Broadcast) == []


def test_resume_after_a_drop() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    joined_at = h.member("dev-a").joined_at  # type: ignore[union-attr]
    dropped = h.core.disconnected(1)
    assert of(dropped, MemberChanged)[0].member.connection_status == "reconnecting"
    assert connection_ids(dropped) == set()
    assert h.member("dev-a").connection_status == "reconnecting"  # type: ignore[union-attr]
    # The others see the status change in the next batch.
    update = to(h.advance(1), 2)
    assert len(update) == 1
    assert isinstance(update[0], MemberUpdated)
    assert [(m.id, m.connection_status) for m in update[0].members] == [("dev-a", "reconnecting")]
    h.clock.advance(10)  # still within the 15 s hold
    effects = h.join(3, "dev-a", token=h.tokens["dev-a"])
    assert [type(m) for m in to(effects, 3)] == [Welcome, MemberList]
    assert to(effects, 2) == []
    assert of(effects, MemberChanged)[0].member.connection_status == "connected"
    after = h.member("dev-a")
    assert after is not None
    assert after.joined_at == joined_at
    assert after.connection_status == "connected"
    # ...and back to connected, batched; never MEMBER_LEFT / MEMBER_JOINED.
    update = to(h.advance(0.5), 2)
    assert len(update) == 1
    assert isinstance(update[0], MemberUpdated)
    assert [(m.id, m.connection_status) for m in update[0].members] == [("dev-a", "connected")]
    h.send(2, hb())
    h.send(3, hb())
    later = h.advance(5)
    assert not [m for m in to(later, 2) if isinstance(m, MemberLeft | MemberJoined)]
    assert h.ids == [HOST_ID, "dev-a", "dev-b"]


def test_a_newcomer_that_saw_an_unsent_status_hears_when_it_reverts() -> None:
    """dev-a drops and resumes within one batch interval, so the others never hear of it;
    but dev-c joined in between, and its MEMBER_LIST said "reconnecting". It must hear
    "connected" in the next batch, or it would show dev-a reconnecting for good."""
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.advance(5)  # the joins' batch is out: the next comes a heartbeat interval later
    h.core.disconnected(1)
    joined = h.join(3, "dev-c")
    (members,) = [m for m in to(joined, 3) if isinstance(m, MemberList)]
    assert {m.id: m.connection_status for m in members.members}["dev-a"] == "reconnecting"
    h.join(4, "dev-a", token=h.tokens["dev-a"])
    h.send(2, hb())
    h.send(3, hb())
    (batch,) = of(h.advance(5), Broadcast)
    assert isinstance(batch.message, MemberUpdated)
    assert 3 in batch.conns
    assert [(m.id, m.connection_status) for m in batch.message.members] == [("dev-a", "connected")]


def test_resume_is_not_cut_by_the_old_hold_deadline() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.core.disconnected(1)
    h.clock.advance(14)
    h.join(2, "dev-a", token=h.tokens["dev-a"])
    h.clock.advance(2)
    h.send(2, hb())
    effects = h.advance(0)
    assert not of(effects, MemberRemoved)
    assert h.member("dev-a").connection_status == "connected"  # type: ignore[union-attr]


def test_stolen_device_id_without_token_while_reconnecting_is_already_joined() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.core.disconnected(1)
    assert_refused(h.join(2, "dev-a"), 2, ErrorCode.ALREADY_JOINED)
    assert h.member("dev-a").connection_status == "reconnecting"  # type: ignore[union-attr]
    # The rightful owner still resumes.
    assert of(to(h.join(3, "dev-a", token=h.tokens["dev-a"]), 3), Welcome)


def test_resume_after_the_hold_expired_is_a_fresh_join() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    old_token = h.tokens["dev-a"]
    h.core.disconnected(1)
    h.clock.advance(10)
    h.send(2, hb())
    expired = h.advance(5)
    assert [m for m in to(expired, 2) if isinstance(m, MemberLeft)] == [
        MemberLeft(timestamp=h.clock.wall_ms(), member_id="dev-a", reason="disconnected")
    ]
    effects = h.join(3, "dev-a", token=old_token)
    welcome = to(effects, 3)[0]
    assert isinstance(welcome, Welcome)
    assert welcome.resume_token != old_token
    assert [type(m) for m in to(effects, 2)] == [MemberJoined]
    assert h.member("dev-a").joined_at == h.clock.wall_ms()  # type: ignore[union-attr]
    assert of(effects, MemberAdded)


# Rule 4: LEAVE and drops --------------------------------------------------------


def test_leave_closes_1000_and_tells_the_others() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.join(3, "dev-c")
    effects = h.send(1, Leave(timestamp=T, reason="user quit"))
    assert closes(effects) == {1: CloseCode.NORMAL}
    assert to(effects, 1) == []
    for other in (2, 3):
        assert to(effects, other) == [
            MemberLeft(timestamp=h.clock.wall_ms(), member_id="dev-a", reason="left")
        ]
    assert of(effects, MemberRemoved) == [MemberRemoved("dev-a", "Dev-A", "left")]
    assert h.ids == [HOST_ID, "dev-b", "dev-c"]
    assert h.core.disconnected(1) == []
    assert h.send(1, hb()) == []


def test_a_drop_becomes_member_left_disconnected_after_the_heartbeat_timeout() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.core.disconnected(1)
    for _ in range(14):
        h.send(2, hb())
        effects = h.advance(1)
        assert not [m for m in to(effects, 2) if isinstance(m, MemberLeft)]
        assert "dev-a" in h.ids
    h.send(2, hb())
    effects = h.advance(1)
    assert to(effects, 2) == [
        MemberLeft(timestamp=h.clock.wall_ms(), member_id="dev-a", reason="disconnected")
    ]
    assert of(effects, MemberRemoved) == [MemberRemoved("dev-a", "Dev-A", "disconnected")]
    assert h.ids == [HOST_ID, "dev-b"]
    assert of(effects, Close) == []  # nothing to close: the link is already gone


def test_disconnect_before_join_changes_nothing() -> None:
    h = Host()
    h.open(1)
    assert h.core.disconnected(1) == []
    assert h.core.disconnected(99) == []
    assert h.core.connection_count == 0


# Rule 5: heartbeat timeout ------------------------------------------------------


def test_a_silent_member_is_closed_4002_after_the_heartbeat_timeout() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    for _ in range(14):
        h.send(2, hb())
        assert closes(h.advance(1)) == {}
    h.clock.advance(0.999)
    h.send(2, hb())
    assert closes(h.core.tick()) == {}
    h.clock.advance(0.001)
    effects = h.core.tick()
    assert closes(effects) == {1: CloseCode.HEARTBEAT_TIMEOUT}
    assert to(effects, 2) == [
        MemberLeft(timestamp=h.clock.wall_ms(), member_id="dev-a", reason="timeout")
    ]
    assert to(effects, 1) == []
    assert of(effects, MemberRemoved) == [MemberRemoved("dev-a", "Dev-A", "timeout")]
    assert h.ids == [HOST_ID, "dev-b"]
    # The socket's end afterwards is no news, and a late frame is ignored.
    assert h.core.disconnected(1) == []
    assert h.send(1, hb()) == []
    assert closes(h.advance(1)) == {}


def test_the_timeout_is_only_acted_on_by_tick() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.clock.advance(20)
    # Another member's traffic does not run the deadline check.
    assert closes(h.send(2, hb())) == {}
    assert "dev-a" in h.ids
    assert closes(h.core.tick()) == {1: CloseCode.HEARTBEAT_TIMEOUT}


@pytest.mark.parametrize(
    "sign_of_life",
    [
        hb(),
        ping(1.0),
        '{"type": "HEARTBEAT", "timestamp": 1, "extra": true}',
        "not even json",  # an INVALID_MESSAGE after JOIN is still a sign of life
        b"binary",
        join_msg("dev-a"),  # a second JOIN, refused, is still life
    ],
)
def test_any_message_counts_as_a_sign_of_life(sign_of_life: Message | str | bytes) -> None:
    h = Host()
    h.join(1, "dev-a")
    h.clock.advance(10)
    h.send(1, sign_of_life)
    assert closes(h.advance(14.9)) == {}
    assert closes(h.advance(0.1)) == {1: CloseCode.HEARTBEAT_TIMEOUT}


# Rule 6: PING / PONG and MEMBER_UPDATED -----------------------------------------


def test_ping_gets_pong_at_once_to_the_sender_only() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.clock.advance(1.5)
    effects = h.send(1, ping(timestamp=T + 777))
    assert to(effects, 1) == [
        Pong(timestamp=h.clock.wall_ms(), ping_timestamp=T + 777, received_at=h.clock.wall_ms())
    ]
    assert connection_ids(effects) == {1}


def test_ping_latency_reaches_the_others_only_batched() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    effects = h.send(1, ping(3.2))
    assert connection_ids(effects) == {1}  # just the PONG
    assert [c.member.latency for c in of(effects, MemberChanged)] == [3.2]
    assert h.member("dev-a").latency == 3.2  # type: ignore[union-attr]
    update = of(h.advance(0.5), Broadcast)
    assert len(update) == 1
    assert set(update[0].conns) == {1, 2}
    assert isinstance(update[0].message, MemberUpdated)
    assert [(m.id, m.latency) for m in update[0].message.members] == [("dev-a", 3.2)]


def _two_with_latency() -> Host:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.send(1, ping(100.0))
    h.send(2, ping(10.0))
    (first,) = of(h.advance(0.1), Broadcast)
    assert isinstance(first.message, MemberUpdated)
    assert [(m.id, m.latency) for m in first.message.members] == [
        ("dev-a", 100.0),
        ("dev-b", 10.0),
    ]
    return h


def test_member_updated_at_most_once_per_heartbeat_interval() -> None:
    h = _two_with_latency()
    h.send(1, ping(200.0))
    for _ in range(4):  # 4.9 s since the last batch
        assert of(h.advance(1.2), Broadcast) == []
    h.send(1, ping(300.0))
    assert of(h.advance(0.1), Broadcast) == []
    (batch,) = of(h.advance(0.1), Broadcast)  # 5.1 s since the last batch
    assert isinstance(batch.message, MemberUpdated)
    # One message, with the latest value.
    assert [(m.id, m.latency) for m in batch.message.members] == [("dev-a", 300.0)]


def test_member_updated_carries_only_changed_members() -> None:
    h = _two_with_latency()
    h.send(1, ping(150.0))
    h.send(2, ping(10.5))  # insignificant
    (batch,) = of(h.advance(5), Broadcast)
    assert isinstance(batch.message, MemberUpdated)
    assert [m.id for m in batch.message.members] == ["dev-a"]


def test_insignificant_latency_changes_are_not_sent() -> None:
    h = _two_with_latency()
    for latency in (110.0, 95.0, 119.0, 81.0):
        h.send(1, ping(latency))
        h.send(2, ping(13.0))
        assert of(h.advance(5), Broadcast) == []
    # The host still keeps the exact value.
    assert h.member("dev-a").latency == 81.0  # type: ignore[union-attr]


def test_small_changes_add_up_against_the_last_value_sent() -> None:
    h = _two_with_latency()
    for latency in (110.0, 118.0):
        h.send(1, ping(latency))
        h.send(2, hb())
        assert of(h.advance(5), Broadcast) == []
    h.send(1, ping(121.0))  # 21 ms / 21% from the 100 last sent
    h.send(2, hb())
    (batch,) = of(h.advance(5), Broadcast)
    assert isinstance(batch.message, MemberUpdated)
    assert [(m.id, m.latency) for m in batch.message.members] == [("dev-a", 121.0)]


def test_a_ping_without_latency_keeps_the_last_one() -> None:
    h = _two_with_latency()
    effects = h.send(1, ping(None))
    assert of(effects, MemberChanged) == []
    assert h.member("dev-a").latency == 100.0  # type: ignore[union-attr]
    assert of(h.advance(5), Broadcast) == []


def test_status_and_latency_updates_share_one_batch() -> None:
    h = _two_with_latency()
    h.join(3, "dev-c")
    h.send(2, ping(40.0))
    h.core.disconnected(1)
    (batch,) = of(h.advance(5), Broadcast)
    assert set(batch.conns) == {2, 3}  # dev-a's link is gone
    assert isinstance(batch.message, MemberUpdated)
    assert [(m.id, m.connection_status, m.latency) for m in batch.message.members] == [
        ("dev-a", "reconnecting", 100.0),
        ("dev-b", "connected", 40.0),
    ]


def test_a_member_removed_before_the_batch_is_not_in_it() -> None:
    h = _two_with_latency()
    h.send(1, ping(500.0))
    h.send(1, Leave(timestamp=T))
    assert of(h.advance(5), Broadcast) == []


# Rule 7: kick and ban -----------------------------------------------------------


def test_kick_sends_kicked_closes_4000_tells_the_others_and_bans() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    effects = h.core.kick("dev-a", "too loud")
    wire = [e for e in effects if isinstance(e, Send | Close)]
    assert wire == [
        Send(1, Kicked(timestamp=h.clock.wall_ms(), reason="too loud")),
        Close(1, CloseCode.KICKED, "kicked"),
    ]
    assert to(effects, 2) == [
        MemberLeft(timestamp=h.clock.wall_ms(), member_id="dev-a", reason="kicked")
    ]
    assert [m for m in to(effects, 1) if isinstance(m, MemberLeft)] == []
    assert of(effects, BansChanged) == [
        BansChanged(frozenset({"dev-a"}), frozenset(), (("dev-a", "Dev-A"),))  # who, by name
    ]
    assert of(effects, MemberRemoved) == [MemberRemoved("dev-a", "Dev-A", "kicked")]
    assert h.ids == [HOST_ID, "dev-b"]
    assert h.core.banned == {"dev-a"}
    assert h.send(1, hb()) == []
    assert h.core.disconnected(1) == []
    # Banned for the rest of the session, token or not.
    assert_refused(h.join(3, "dev-a"), 3, ErrorCode.UNAUTHORIZED)
    assert_refused(h.join(4, "dev-a", token=h.tokens["dev-a"]), 4, ErrorCode.UNAUTHORIZED)


def test_kicking_a_reconnecting_member_bans_it_without_closing_anything() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.core.disconnected(1)
    effects = h.core.kick("dev-a")
    assert closes(effects) == {}
    assert connection_ids(effects) == {2}
    assert "dev-a" in h.core.banned
    assert_refused(h.join(3, "dev-a", token=h.tokens["dev-a"]), 3, ErrorCode.UNAUTHORIZED)


def test_the_host_row_cannot_be_kicked() -> None:
    h = Host()
    h.join(1, "dev-a")
    assert h.core.kick(HOST_ID) == []
    assert h.ids == [HOST_ID, "dev-a"]
    assert h.core.banned == frozenset()


def test_kicking_an_unknown_id_does_nothing() -> None:
    h = Host()
    h.join(1, "dev-a")
    assert h.core.kick("dev-zzz") == []
    assert h.ids == [HOST_ID, "dev-a"]


# Rule 8: stop -------------------------------------------------------------------


def test_stop_sends_session_closed_then_closes_everyone_1001() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.open(3)  # not joined yet
    effects = h.core.stop("bye")
    (broadcast,) = of(effects, Broadcast)
    assert set(broadcast.conns) == {1, 2}
    assert broadcast.message == SessionClosed(timestamp=h.clock.wall_ms(), reason="bye")
    assert closes(effects) == {
        1: CloseCode.GOING_AWAY,
        2: CloseCode.GOING_AWAY,
        3: CloseCode.GOING_AWAY,
    }
    assert effects.index(broadcast) < min(effects.index(c) for c in of(effects, Close))
    assert h.core.closed
    assert h.send(1, ping()) == []
    assert h.send(3, join_msg("dev-c")) == []


def test_a_closed_session_holds_no_places_and_logs_no_drops() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.core.stop("bye")
    dropped = h.core.disconnected(1) + h.core.disconnected(2)
    assert dropped == []  # no "dropped; holding their place" lines, no member events
    assert h.ids == [HOST_ID]


def test_after_stop_a_new_connection_is_closed_and_cannot_join() -> None:
    h = Host()
    h.core.stop()
    assert h.open(5) == [Close(5, CloseCode.GOING_AWAY, "session closed")]
    assert h.send(5, join_msg("dev-late")) == []
    assert h.ids == [HOST_ID]


def test_stop_with_nobody_connected() -> None:
    h = Host()
    effects = h.core.stop()
    assert connection_ids(effects) == set()
    assert h.core.closed


# Rule 9: limits -----------------------------------------------------------------


def test_no_join_within_the_join_timeout_closes_1008() -> None:
    h = Host()
    h.open(1)
    h.clock.advance(1)
    h.join(2, "dev-a")
    assert closes(h.advance(3.999)) == {}
    effects = h.advance(0.001)
    assert closes(effects) == {1: CloseCode.POLICY}
    assert connection_ids(effects) == {1}
    assert closes(h.advance(1)) == {}  # closed once
    assert h.send(1, join_msg("dev-b")) == []  # too late


def test_the_join_timeout_is_configurable() -> None:
    h = Host(join_timeout=0.5)
    h.open(1)
    assert closes(h.advance(0.5)) == {1: CloseCode.POLICY}


@pytest.mark.parametrize(
    "after_join",
    [
        join_msg("dev-a"),
        join_msg("dev-z"),
        Welcome(
            timestamp=T,
            client_id="x",
            resume_token="t",
            session=SessionInfo("s", "n", "h", "hn", 2, 1, 1),
            heartbeat_interval=1,
            heartbeat_timeout=2,
        ),
        MemberList(timestamp=T, members=[]),
        MemberJoined(timestamp=T, member=MemberInfo("x", "X", False, "connected", T)),
        MemberLeft(timestamp=T, member_id="x", reason="left"),
        MemberUpdated(timestamp=T, members=[]),
        Kicked(timestamp=T, reason="r"),
        SessionClosed(timestamp=T, reason="r"),
        Pong(timestamp=T, ping_timestamp=T, received_at=T),
        Error(timestamp=T, code=ErrorCode.SESSION_FULL, message="m"),
        "{broken",
        '{"type": "PING", "timestamp": -5}',
        b"\x00\x01",
    ],
)
def test_bad_messages_after_join_get_an_error_and_the_connection_stays(
    after_join: Message | str | bytes,
) -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    members = h.core.members
    effects = h.send(1, after_join)
    assert len(effects) == 1
    (send,) = of(effects, Send)
    assert send.conn == 1
    assert isinstance(send.message, Error)
    assert send.message.code == ErrorCode.INVALID_MESSAGE
    assert h.core.members == members
    assert h.core.member_of(1) == "dev-a"
    assert [type(m) for m in to(h.send(1, ping()), 1)] == [Pong]


def test_rate_limit_burst_then_close_1008() -> None:
    h = Host()
    h.join(1, "dev-a", heard=False)  # the JOIN is one of the 50
    h.join(2, "dev-b")
    for i in range(49):
        assert closes(h.send(1, hb())) == {}, i
    effects = h.send(1, hb())
    wire = [e for e in effects if isinstance(e, Send | Close)]
    assert len(wire) == 2
    assert isinstance(wire[0], Send)
    assert isinstance(wire[0].message, Error)
    assert wire[0].message.code == ErrorCode.RATE_LIMITED
    assert wire[1] == Close(1, CloseCode.POLICY, "rate limit exceeded")
    assert connection_ids(effects) == {1}
    assert h.send(1, ping()) == []  # closing: ignored
    # The other member is unaffected and has its own budget.
    assert [type(m) for m in to(h.send(2, ping()), 2)] == [Pong]
    # The member is not removed by the rate limit itself; the link dropping follows.
    assert "dev-a" in h.ids
    h.core.disconnected(1)
    assert h.member("dev-a").connection_status == "reconnecting"  # type: ignore[union-attr]


def test_rate_limit_allows_a_sustained_20_per_second() -> None:
    h = Host()
    h.join(1, "dev-a")
    for _ in range(49):
        h.send(1, hb())
    for _ in range(200):  # 19.9 a second for 10 s after a spent burst
        h.clock.advance(1 / 19.9)
        assert closes(h.send(1, hb())) == {}


def test_rate_limit_catches_a_sustained_flood() -> None:
    h = Host()
    h.join(1, "dev-a")
    sent = 0
    effects: list[HostEffect] = []
    while sent < 500 and not closes(effects):
        h.clock.advance(1 / 30)  # 30 a second
        effects = h.send(1, hb())
        sent += 1
    assert closes(effects) == {1: CloseCode.POLICY}
    # Burst 50 (one was the JOIN) plus 20/s refill against 30/s: dry after about 147.
    assert 140 <= sent <= 150


def test_errors_reach_only_their_own_connection() -> None:
    h = Host(max_members=5)
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    h.join(3, "dev-c")
    cases: list[tuple[ConnId, Message | str | bytes]] = [
        (1, "not json"),
        (1, b"bin"),
        (1, join_msg("dev-a")),
        (1, Pong(timestamp=T, ping_timestamp=T, received_at=T)),
        (1, '{"type": "WHAT", "timestamp": 1}'),
    ]
    for conn, frame in cases:
        assert connection_ids(h.send(conn, frame)) == {conn}, frame
    refused = [
        (10, "garbage"),
        (11, encode(join_msg("dev-x", version=3))),
        (12, encode(join_msg("dev-x", session_id="zz"))),
        (13, encode(join_msg("dev-b"))),
        (14, encode(hb())),
    ]
    for conn, frame in refused:
        h.open(conn)
        effects = h.send(conn, frame)
        assert connection_ids(effects) == {conn}, frame
        assert closes(effects) == {conn: CloseCode.JOIN_REFUSED}
    h.join(20, "dev-d")
    assert_refused(h.join(21, "dev-e"), 21, ErrorCode.SESSION_FULL)
    h.send(2, Leave(timestamp=T))
    h.core.kick("dev-c")
    h.join(22, "dev-c")
    effects = []
    for _ in range(60):
        effects = h.send(1, hb())
        if closes(effects):
            break
    assert closes(effects) == {1: CloseCode.POLICY}
    assert connection_ids(effects) == {1}
    assert h.ids == [HOST_ID, "dev-a", "dev-d"]


def test_frames_from_unknown_connections_are_ignored() -> None:
    h = Host()
    assert h.send(42, join_msg("dev-a")) == []
    assert h.ids == [HOST_ID]


def test_members_view_and_session_info_follow_the_membership() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    assert h.core.session_info().member_count == 3
    h.send(1, Leave(timestamp=T))
    assert h.core.session_info().member_count == 2
    assert [m.is_host for m in h.core.members] == [True, False]


def test_the_members_view_follows_every_change_a_row_shows() -> None:
    """Each change a row shows is in the members view at once, and in the MEMBER_LIST
    a newcomer gets: never a value that has passed."""
    h = Host()

    def ada() -> MemberInfo:
        row = h.member("dev-a")
        assert row is not None
        return row

    h.join(1, "dev-a", name="Ada")
    first = ada()
    assert ada() == first  # nothing changed
    h.send(1, ping(latency=40.0))
    assert ada().latency == 40.0
    h.core.set_dj("dev-a", True)
    assert ada().dj
    h.core.disconnected(1)
    assert ada().connection_status == "reconnecting"
    h.join(2, "dev-a", name="Ada Lovelace", token=h.tokens["dev-a"])  # resumes, renamed
    row = ada()
    assert (row.name, row.connection_status, row.latency, row.dj) == (
        "Ada Lovelace",
        "connected",
        40.0,
        True,
    )
    newcomer = h.join(3, "dev-b")
    (listed,) = [m for m in to(newcomer, 3) if isinstance(m, MemberList)]
    assert row in listed.members
    h.join(4, "dev-a", name="Ada L.", token=h.tokens["dev-a"])  # resumes while connected
    assert (ada().name, ada().connection_status) == ("Ada L.", "connected")


def test_resume_after_the_hold_ran_out_is_a_fresh_join_even_before_the_tick() -> None:
    host = Host()
    host.join(1, "dev-a")
    host.join(2, "dev-b")
    host.core.disconnected(1)
    host.clock.advance(host.config.heartbeat_timeout + 0.01)  # no tick has run
    effects = host.join(3, "dev-a", token=host.tokens["dev-a"])
    left = [
        e.message for e in effects if isinstance(e, Broadcast) and isinstance(e.message, MemberLeft)
    ]
    assert [(m.member_id, m.reason) for m in left] == [("dev-a", "disconnected")]
    assert any(isinstance(e, MemberAdded) for e in effects)
    assert sorted(host.ids) == ["dev-a", "dev-b", HOST_ID]


def test_tick_does_not_close_a_connection_twice() -> None:
    host = Host()
    host.join(1, "dev-a")
    for _ in range(host.config.rate_burst + 1):
        host.send(1, Heartbeat(timestamp=T))
    effects = host.advance(host.config.heartbeat_timeout + 1)
    assert not [e for e in effects if isinstance(e, Close)]


def test_a_link_that_falls_before_the_guest_spoke_is_held_like_any_other() -> None:
    """Held, so a guest that got its token resumes with no churn for the others."""
    h = Host()
    h.join(1, "dev-w")
    h.join(2, "dev-a", heard=False)
    effects = h.core.disconnected(2)
    assert not [m for m in to(effects, 1) if isinstance(m, MemberLeft)]
    assert h.member("dev-a") is not None
    again = h.join(3, "dev-a", token=h.tokens["dev-a"])
    assert any(isinstance(m, Welcome) for m in to(again, 3))
    assert not [m for m in to(again, 1) if isinstance(m, MemberLeft | MemberJoined)]
    assert not of(again, MemberRemoved)


def test_a_join_without_the_token_is_refused_while_the_place_is_live() -> None:
    h = Host()
    h.join(1, "dev-a")
    refused = h.join(2, "dev-a")
    assert [m.code for m in to(refused, 2) if isinstance(m, Error)] == [ErrorCode.ALREADY_JOINED]


# The session clock -----------------------------------------------------------------


def test_a_pong_carries_the_session_clock_stamps_when_the_ping_asks() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.clock.advance(2.5)  # the session started 2.5 s ago
    effects = h.core.received(
        1, encode(Ping(timestamp=T, sent_us=777)), at_us=h.clock.monotonic_us() - 40
    )
    (pong,) = [m for m in to(effects, 1) if isinstance(m, Pong)]
    assert pong.ping_sent_us == 777
    assert pong.received_us == 2_500_000 - 40  # read 40 µs before the core saw it
    assert pong.sent_us == 2_500_000
    plain = h.send(1, Ping(timestamp=T + 1))  # a peer that keeps no session clock
    (old,) = [m for m in to(plain, 1) if isinstance(m, Pong)]
    assert (old.ping_sent_us, old.received_us, old.sent_us) == (None, None, None)


def test_a_reported_clock_uncertainty_reaches_the_host_table_but_no_guest() -> None:
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    effects = h.send(1, Ping(timestamp=T, sent_us=1, clock_uncertainty_us=42.0))
    (changed,) = of(effects, MemberChanged)
    assert changed.clock_uncertainty_us == 42.0
    assert to(effects, 2) == []  # not broadcast: it is the host's business
    assert (
        of(h.send(1, Ping(timestamp=T + 1, sent_us=2, clock_uncertainty_us=44.0)), MemberChanged)
        == []
    )
