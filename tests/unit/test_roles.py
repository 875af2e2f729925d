"""The DJ role: the host gives it and takes it back, a DJ's CONTROL becomes a request for
the adapter, anyone else's an ERROR NOT_ALLOWED; guests send CONTROL, learn their role
and see who did what (`by`). Pure cores on a fake clock, no sockets."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from loudsync_tui.core.effects import (
    Broadcast,
    Close,
    ControlRequested,
    HostEffect,
    Log,
    MemberChanged,
    MemberRemoved,
    Send,
)
from loudsync_tui.core.epoch import Epoch
from loudsync_tui.core.guest import (
    Disconnect,
    Ended,
    EpochChanged,
    GuestEffect,
    MembersReplaced,
    MembersUpdated,
    TrackAnnounced,
    Transmit,
)
from loudsync_tui.core.host import connection_ids
from loudsync_tui.protocol import (
    CloseCode,
    Control,
    Error,
    ErrorCode,
    Leave,
    MemberInfo,
    MemberList,
    MemberUpdated,
    Message,
    Pause,
    Ping,
    Play,
    Pong,
    ProtocolError,
    Seek,
    Track,
    decode,
    encode,
)
from loudsync_tui.store.state import ConnectionState as S
from tests.unit.test_guest_core import Guest, Network, begin, of, sent, welcome
from tests.unit.test_host_core import HOST_ID, Host, T, to

NOT_A_DJ = "Only a DJ can control playback; ask the host"


def control(action: str, seconds: float | None = None) -> str:
    """A CONTROL frame as JSON text (so malformed ones can be written too)."""
    raw: dict[str, Any] = {"type": "CONTROL", "timestamp": T, "action": action}
    if seconds is not None:
        raw["seconds"] = seconds
    return json.dumps(raw)


def two_guests() -> Host:
    """A host with dev-a on connection 1 and dev-b on connection 2."""
    h = Host()
    h.join(1, "dev-a")
    h.join(2, "dev-b")
    return h


def only_error(effects: list[HostEffect], conn: int) -> Error:
    """Exactly one effect: an ERROR sent to `conn`."""
    assert len(effects) == 1, effects
    (send,) = effects
    assert isinstance(send, Send)
    assert send.conn == conn
    assert isinstance(send.message, Error)
    return send.message


# The host gives and takes back the role -----------------------------------------


def test_granting_the_role_tells_every_member_at_once_the_store_and_the_log() -> None:
    h = two_guests()
    effects = h.core.set_dj("dev-a", True)
    (broadcast,) = of(effects, Broadcast)
    assert set(broadcast.conns) == {1, 2}  # the new DJ too, and without waiting for a tick
    assert isinstance(broadcast.message, MemberUpdated)
    (row,) = broadcast.message.members
    assert (row.id, row.dj) == ("dev-a", True)
    (changed,) = of(effects, MemberChanged)
    assert changed.member.id == "dev-a"
    assert changed.member.dj is True
    assert of(effects, Log) == [Log("info", "Dev-A is now a DJ")]
    member = h.member("dev-a")
    assert member is not None
    assert member.dj is True
    other = h.member("dev-b")
    assert other is not None
    assert other.dj is False
    assert json.loads(encode(broadcast.message))["members"][0]["dj"] is True


def test_revoking_the_role_is_told_the_same_way() -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    effects = h.core.set_dj("dev-a", False)
    (broadcast,) = of(effects, Broadcast)
    assert isinstance(broadcast.message, MemberUpdated)
    assert [(m.id, m.dj) for m in broadcast.message.members] == [("dev-a", False)]
    (changed,) = of(effects, MemberChanged)
    assert changed.member.dj is False
    assert of(effects, Log) == [Log("info", "Dev-A is no longer a DJ")]
    member = h.member("dev-a")
    assert member is not None
    assert member.dj is False


def test_setting_the_role_a_member_already_has_changes_nothing() -> None:
    h = two_guests()
    assert h.core.set_dj("dev-a", False) == []
    h.core.set_dj("dev-a", True)
    assert h.core.set_dj("dev-a", True) == []


@pytest.mark.parametrize("member_id", ["dev-nobody", HOST_ID])
def test_an_unknown_member_or_the_host_gets_only_a_warning(member_id: str) -> None:
    h = two_guests()
    before = h.core.members
    effects = h.core.set_dj(member_id, True)
    assert len(effects) == 1
    (log,) = effects
    assert isinstance(log, Log)
    assert log.level == "warning"
    assert h.core.members == before
    assert all(not m.dj for m in h.core.members)


def test_the_role_reaches_a_late_joiner_in_its_member_list() -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    effects = h.join(3, "dev-c")
    (members,) = [m for m in to(effects, 3) if isinstance(m, MemberList)]
    assert {m.id: m.dj for m in members.members} == {
        HOST_ID: False,
        "dev-a": True,
        "dev-b": False,
        "dev-c": False,
    }


def test_a_role_change_settles_the_pending_batch_for_that_member() -> None:
    """The row sent at once carried the new status: the next batch does not repeat it."""
    h = two_guests()
    h.advance(h.config.heartbeat_interval)  # the joins' batch is out of the way
    h.send(1, Ping(timestamp=T, latency=40.0))  # a latency change waiting for the batch
    effects = h.core.set_dj("dev-a", True)
    (broadcast,) = of(effects, Broadcast)
    assert isinstance(broadcast.message, MemberUpdated)
    assert broadcast.message.members[0].latency == 40.0
    later = h.advance(h.config.heartbeat_interval)
    assert not [m for m in to(later, 2) if isinstance(m, MemberUpdated)]


# CONTROL on the host -------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "seconds", "expected"),
    [
        ("play", None, 0.0),
        ("pause", None, 0.0),
        ("toggle", None, 0.0),
        ("seek", -10.0, -10.0),
        ("seek", 3600, 3600.0),
        ("next", None, 0.0),
        ("prev", None, 0.0),
    ],
)
def test_a_djs_control_becomes_a_request_for_the_adapter(
    action: str, seconds: float | None, expected: float
) -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    effects = h.send(1, control(action, seconds))
    assert effects == [ControlRequested("dev-a", "Dev-A", action, expected)]  # type: ignore[arg-type]


def test_a_control_from_a_member_without_the_role_is_refused_to_it_alone() -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    effects = h.send(2, control("pause"))
    error = only_error(effects, 2)
    assert error.code is ErrorCode.NOT_ALLOWED
    assert error.message == NOT_A_DJ
    assert connection_ids(effects) == {2}
    assert not of(effects, ControlRequested)
    # Nothing else changed: still a member, still connected, still answered.
    assert h.ids == [HOST_ID, "dev-a", "dev-b"]
    pong = to(h.send(2, Ping(timestamp=T)), 2)
    assert len(pong) == 1
    assert isinstance(pong[0], Pong)


def test_a_control_after_the_role_was_taken_back_is_refused() -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    assert of(h.send(1, control("play")), ControlRequested)
    h.core.set_dj("dev-a", False)
    effects = h.send(1, control("play"))
    assert only_error(effects, 1).code is ErrorCode.NOT_ALLOWED
    assert not of(effects, ControlRequested)


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        (control("dance"), "CONTROL: $.action invalid enum value 'dance'"),
        (control("seek", 5000), "CONTROL: $.seconds expected float <= 3600.0"),
        (control("seek", -5000), "CONTROL: $.seconds expected float >= -3600.0"),
        (
            '{"type": "CONTROL", "timestamp": 1, "action": "seek", "seconds": 1e999}',
            "not JSON: Number out of range",  # the protocol's words for a number no float holds
        ),
        ('{"type": "CONTROL", "timestamp": 1, "action": "seek", "seconds": NaN}', "not JSON"),
        (
            '{"type": "CONTROL", "timestamp": 1, "action": "seek", "seconds": "10"}',
            "CONTROL: $.seconds expected float, got str",
        ),
        ('{"type": "CONTROL", "timestamp": 1}', "CONTROL: missing required field action"),
    ],
)
def test_a_malformed_control_is_invalid_and_the_session_goes_on(frame: str, says: str) -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    effects = h.send(1, frame)
    error = only_error(effects, 1)
    assert error.code is ErrorCode.INVALID_MESSAGE
    assert error.message.startswith(says)
    assert not of(effects, ControlRequested)
    assert h.ids == [HOST_ID, "dev-a", "dev-b"]
    assert h.send(1, control("pause")) == [ControlRequested("dev-a", "Dev-A", "pause", 0.0)]


def test_control_counts_toward_the_rate_limit() -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    requested = 0
    closed: list[Close] = []
    for _ in range(h.config.rate_burst + 5):
        effects = h.send(1, control("toggle"))
        requested += len(of(effects, ControlRequested))
        closed += of(effects, Close)
        if closed:
            assert any(
                isinstance(e, Send)
                and isinstance(e.message, Error)
                and e.message.code is ErrorCode.RATE_LIMITED
                for e in effects
            )
            break
    assert closed == [Close(1, CloseCode.POLICY, "rate limit exceeded")]
    assert requested == h.config.rate_burst - 2  # the JOIN and the HEARTBEAT took a token each


def test_the_role_survives_a_resume() -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    h.core.disconnected(1)
    effects = h.join(3, "dev-a", token=h.tokens["dev-a"])
    (members,) = [m for m in to(effects, 3) if isinstance(m, MemberList)]
    assert {m.id: m.dj for m in members.members}["dev-a"] is True
    (changed,) = of(effects, MemberChanged)
    assert changed.member.dj is True
    assert h.send(3, control("next")) == [ControlRequested("dev-a", "Dev-A", "next", 0.0)]


def test_the_role_ends_with_a_leave_and_a_fresh_join_has_none() -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    h.send(1, Leave(timestamp=T))
    h.core.disconnected(1)
    assert "dev-a" not in h.ids
    h.join(3, "dev-a")
    member = h.member("dev-a")
    assert member is not None
    assert member.dj is False
    assert only_error(h.send(3, control("play")), 3).code is ErrorCode.NOT_ALLOWED


def test_the_role_ends_with_a_kick() -> None:
    h = two_guests()
    h.core.set_dj("dev-a", True)
    assert of(h.core.kick("dev-a"), MemberRemoved)
    assert "dev-a" not in h.ids
    effects = h.core.set_dj("dev-a", False)
    assert [type(e) for e in effects] == [Log]


# The guest ----------------------------------------------------------------------


def me(dj: bool) -> MemberInfo:
    return MemberInfo("dev-a", "Ada", False, "connected", T, None, dj=dj)


def test_control_is_sent_only_while_connected() -> None:
    g = Guest()
    assert g.core.control("pause") == []  # not started
    begin(g.core)
    assert g.core.control("pause") == []  # looking the host up / connecting
    g.core.opened()
    assert g.core.control("pause") == []  # JOIN sent, no WELCOME yet
    g.feed(welcome())
    (message,) = sent(g.core.control("pause"))
    assert json.loads(encode(message)) == {
        "type": "CONTROL",
        "timestamp": g.now_ms(),
        "action": "pause",
    }
    (seek,) = sent(g.core.control("seek", -10.0))
    assert json.loads(encode(seek)) == {
        "type": "CONTROL",
        "timestamp": g.now_ms(),
        "action": "seek",
        "seconds": -10.0,
    }
    assert decode(encode(seek)) == Control(timestamp=g.now_ms(), action="seek", seconds=-10.0)
    (play,) = sent(g.core.control("play", 12.0))  # only a seek carries `seconds`
    assert "seconds" not in json.loads(encode(play))
    g.core.closed(None)  # the link drops: reconnecting
    assert g.core.state is S.RECONNECTING
    assert g.core.control("pause") == []


def test_control_is_not_sent_after_leaving() -> None:
    g = Guest()
    g.connected()
    g.core.leave()
    assert g.core.control("play") == []


@pytest.mark.parametrize(
    ("action", "seconds"),
    [
        ("dance", 0.0),
        ("seek", float("nan")),
        ("seek", float("inf")),
        ("seek", float("-inf")),
        ("seek", 3600.5),
    ],
)
def test_a_control_the_host_would_refuse_is_logged_not_sent(action: str, seconds: float) -> None:
    g = Guest()
    g.connected()
    effects = g.core.control(action, seconds)
    assert sent(effects) == []
    (log,) = of(effects, Log)
    assert log.level == "warning"


def test_the_guest_learns_its_role_from_the_member_list_and_updates() -> None:
    g = Guest()
    g.connected()
    assert g.core.is_dj is False
    effects = g.feed(MemberList(timestamp=T, members=[me(False)]))
    assert g.core.is_dj is False
    assert of(effects, Log) == []
    effects = g.feed(MemberUpdated(timestamp=T, members=[me(True)]))
    assert g.core.is_dj is True
    (updated,) = of(effects, MembersUpdated)
    assert updated.members[0].dj is True
    (log,) = of(effects, Log)
    assert "DJ" in log.text
    # Another member's role is not this one's.
    other = MemberInfo("dev-b", "Bob", False, "connected", T, None, dj=False)
    assert of(g.feed(MemberUpdated(timestamp=T, members=[other])), Log) == []
    assert g.core.is_dj is True
    effects = g.feed(MemberUpdated(timestamp=T, members=[me(False)]))
    assert g.core.is_dj is False
    assert [e.text for e in of(effects, Log)] == ["You are no longer a DJ"]


def test_a_fresh_welcome_forgets_the_role_and_a_resume_keeps_it() -> None:
    g = Guest()
    g.connected(token="tok-1")
    g.feed(MemberList(timestamp=T, members=[me(True)]))
    assert g.core.is_dj is True
    g.core.closed(None)
    g.advance(10)  # the reconnect attempt is due
    g.core.opened()
    g.feed(welcome("tok-1"))  # resumed: the role is still the member's
    assert g.core.is_dj is True
    g.core.closed(None)
    g.advance(10)
    g.core.opened()
    g.feed(welcome("tok-2"))  # a fresh member: no role until the list says so
    assert g.core.is_dj is False


def test_an_older_hosts_member_rows_decode_as_not_dj() -> None:
    old_row = (
        '{"id": "dev-a", "name": "Ada", "isHost": false, "connectionStatus": "connected",'
        ' "joinedAt": 1764086400000, "latency": null}'
    )
    assert msgspec.json.decode(old_row, type=MemberInfo).dj is False
    frame = f'{{"type": "MEMBER_LIST", "timestamp": {T}, "members": [{old_row}]}}'
    message = decode(frame)
    assert isinstance(message, MemberList)
    assert message.members[0].dj is False
    g = Guest()
    g.connected()
    effects = g.core.received(frame)
    (replaced,) = of(effects, MembersReplaced)
    assert replaced.members[0].dj is False
    assert g.core.is_dj is False


def test_dj_is_refused_when_it_is_not_a_boolean() -> None:
    frame = json.dumps(
        {
            "type": "MEMBER_JOINED",
            "timestamp": T,
            "member": {
                "id": "dev-a",
                "name": "Ada",
                "isHost": False,
                "connectionStatus": "connected",
                "joinedAt": T,
                "dj": "yes",
            },
        }
    )
    with pytest.raises(ProtocolError, match=r"\$\.member\.dj expected bool"):
        decode(frame)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (Play(timestamp=T, epoch=1, track_id=1, at_us=250_000, sample=0, by="Alice"), "play"),
        (Pause(timestamp=T, epoch=1, track_id=1, at_us=250_000, sample=9, by="Alice"), "pause"),
        (Seek(timestamp=T, epoch=1, track_id=1, at_us=250_000, sample=9, by="Alice"), "seek"),
    ],
)
def test_by_flows_from_the_epoch_message_to_the_guest_effect(message: Message, kind: str) -> None:
    g = Guest()
    g.connected()
    (changed,) = of(g.feed(message), EpochChanged)
    assert changed.kind == kind
    assert changed.by == "Alice"


def test_an_epoch_or_track_without_by_was_the_hosts() -> None:
    g = Guest()
    g.connected()
    play = Play(timestamp=T, epoch=1, track_id=1, at_us=250_000, sample=0)
    assert "by" not in json.loads(encode(play))
    assert of(g.feed(play), EpochChanged) == [
        EpochChanged(Epoch(1, 1, True, 250_000, 0), "play", None)
    ]
    (announced,) = of(g.feed(Track(timestamp=T, track_id=2, title="Song")), TrackAnnounced)
    assert announced.by is None


def test_by_flows_from_the_track_to_the_guest_effect() -> None:
    g = Guest()
    g.connected()
    track = Track(timestamp=T, track_id=2, title="Song", by="Alice")
    assert json.loads(encode(track))["by"] == "Alice"
    (announced,) = of(g.feed(track), TrackAnnounced)
    assert announced.by == "Alice"
    assert announced.track == track


def test_by_is_bounded_like_a_member_name() -> None:
    play = json.loads(encode(Play(timestamp=T, epoch=1, track_id=1, at_us=0, sample=0)))
    play["by"] = "x" * 65
    with pytest.raises(ProtocolError, match=r"\$\.by expected str of length <= 64"):
        decode(json.dumps(play))
    play["by"] = ""
    with pytest.raises(ProtocolError, match=r"\$\.by expected str of length >= 1"):
        decode(json.dumps(play))


def test_not_allowed_is_a_visible_log_and_the_membership_goes_on() -> None:
    g = Guest()
    g.connected()
    error = Error(timestamp=T, code=ErrorCode.NOT_ALLOWED, message=NOT_A_DJ)
    effects: list[GuestEffect] = g.feed(error)
    (log,) = of(effects, Log)
    assert log.level == "warning"
    assert NOT_A_DJ in log.text
    assert not of(effects, Disconnect)
    assert not of(effects, Ended)
    assert g.core.state is S.CONNECTED
    assert g.core.ended is None


# Host and guests together --------------------------------------------------------


def test_host_and_guests_in_memory_a_dj_drives_and_everyone_sees_who() -> None:
    net = Network()
    a = net.add("dev-a", seed=1)
    net.run()
    b = net.add("dev-b", seed=2)
    net.run()
    assert a.conn is not None
    assert b.conn is not None
    net.host_fx(net.host.set_dj("dev-a", True))
    net.run()
    assert a.core.is_dj is True
    assert b.core.is_dj is False
    assert b.members["dev-a"].dj is True  # every member sees the role
    # dev-a's CONTROL reaches the host as a request for its adapter.
    (transmit,) = of(a.core.control("pause"), Transmit)
    requested = net.host.received(a.conn, encode(transmit.message))
    assert requested == [ControlRequested("dev-a", "Dev-A", "pause", 0.0)]
    # The adapter carries it out; the PAUSE names the DJ for everyone.
    (wanted,) = requested
    pause = Pause(timestamp=T, epoch=1, track_id=1, at_us=0, sample=0, by=wanted.name)
    (broadcast,) = net.host.announce(pause)
    assert isinstance(broadcast, Broadcast)
    (seen,) = of(b.core.received(encode(broadcast.message)), EpochChanged)
    assert (seen.kind, seen.by) == ("pause", "Dev-A")
    # dev-b has no role: its CONTROL is refused, and it hears so.
    (transmit,) = of(b.core.control("play"), Transmit)
    refused = net.host.received(b.conn, encode(transmit.message))
    assert not of(refused, ControlRequested)
    (answer,) = refused
    assert isinstance(answer, Send)
    (log,) = of(b.core.received(encode(answer.message)), Log)
    assert NOT_A_DJ in log.text
    assert b.core.state is S.CONNECTED
