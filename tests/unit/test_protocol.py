"""The wire protocol: round trips, and a clear ProtocolError for every bad frame."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loudsync_tui import protocol
from loudsync_tui.protocol import (
    MESSAGE_TYPES,
    Control,
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
    Pause,
    Ping,
    Play,
    Pong,
    ProtocolError,
    Seek,
    SessionClosed,
    SessionInfo,
    SetOutput,
    Track,
    Welcome,
    decode,
    encode,
    type_name,
)

T = 1_764_086_400_000
MEMBER = MemberInfo("m1", "Ada", False, "connected", T, 3.5)
HOST = MemberInfo("h1", "Grace", True, "connected", T - 1, None)
SESSION = SessionInfo("s1", "Friday", "h1", "Grace", 10, 2, 1)

SAMPLES: list[Message] = [
    Join(timestamp=T, session_id="s1", protocol_version=1, device=DeviceInfo("m1", "Ada", "tui")),
    Join(
        timestamp=T,
        session_id="s1",
        protocol_version=1,
        device=DeviceInfo("m1", "Ada", "tui"),
        resume_token="tok",
    ),
    Leave(timestamp=T),
    Leave(timestamp=T, reason="bye"),
    Heartbeat(timestamp=T),
    Ping(timestamp=T),
    Ping(timestamp=T, latency=2.5),
    Welcome(
        timestamp=T,
        client_id="m1",
        resume_token="tok",
        session=SESSION,
        heartbeat_interval=5000,
        heartbeat_timeout=15000,
    ),
    MemberList(timestamp=T, members=[HOST, MEMBER]),
    MemberJoined(timestamp=T, member=MEMBER),
    MemberLeft(timestamp=T, member_id="m1", reason="timeout"),
    MemberUpdated(timestamp=T, members=[MEMBER]),
    Kicked(timestamp=T, reason="bye"),
    SessionClosed(timestamp=T, reason="done"),
    Pong(timestamp=T + 2, ping_timestamp=T, received_at=T + 1),
    Error(timestamp=T, code=ErrorCode.SESSION_FULL, message="full", details={"maxMembers": 10}),
    Error(timestamp=T, code=ErrorCode.RATE_LIMITED, message="slow down"),
    Track(timestamp=T, track_id=1, title="Song", artist="Band", duration_ms=1000),
    Play(timestamp=T, epoch=1, track_id=1, at_us=250_000, sample=0),
    Pause(timestamp=T, epoch=2, track_id=1, at_us=500_000, sample=12_000),
    Seek(timestamp=T, epoch=3, track_id=1, at_us=750_000, sample=96_000, playing=False),
    SetOutput(timestamp=T, volume=0.5, latency_offset_ms=-12.5),
    Control(timestamp=T, action="seek", seconds=-10.0),
    Control(timestamp=T, action="pause"),
    Play(timestamp=T, epoch=4, track_id=1, at_us=1_000_000, sample=0, by="Ada"),
    Track(timestamp=T, track_id=2, title="Next", by="Ada"),
]


def test_samples_cover_all_nineteen_types() -> None:
    assert len(MESSAGE_TYPES) == 19
    assert {type(m) for m in SAMPLES} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type_name(m))
def test_round_trip(message: Message) -> None:
    text = encode(message)
    assert isinstance(text, str)
    raw = json.loads(text)
    assert raw["type"] == type_name(message)
    assert raw["timestamp"] == message.timestamp
    assert decode(text) == message
    assert decode(text.encode()) == message


def test_wire_keys_are_camel_case_and_optional_fields_omitted() -> None:
    raw = json.loads(encode(SAMPLES[0]))
    assert set(raw) == {"type", "timestamp", "sessionId", "protocolVersion", "device"}
    welcome = json.loads(encode(SAMPLES[7]))
    assert welcome["session"]["hostName"] == "Grace"
    assert welcome["heartbeatInterval"] == 5000
    member = json.loads(encode(SAMPLES[8]))["members"][0]
    assert member == {
        "id": "h1",
        "name": "Grace",
        "isHost": True,
        "connectionStatus": "connected",
        "joinedAt": T - 1,
        "latency": None,
        "dj": False,
    }


def test_unknown_keys_are_ignored() -> None:
    raw = json.loads(encode(SAMPLES[0]))
    raw["futureField"] = {"x": 1}
    raw["device"]["colour"] = "red"
    assert decode(json.dumps(raw)) == SAMPLES[0]


def _required_fields(message: Message) -> list[str]:
    info = msgspec.inspect.type_info(type(message))
    assert isinstance(info, msgspec.inspect.StructType)
    return [f.encode_name for f in info.fields if f.required]


def _cases_missing() -> list[tuple[str, str, str]]:
    cases = []
    for message in SAMPLES:
        for name in _required_fields(message):
            cases.append((type_name(message), encode(message), name))
    return cases


@pytest.mark.parametrize(("kind", "text", "field"), _cases_missing())
def test_missing_required_field(kind: str, text: str, field: str) -> None:
    raw = json.loads(text)
    del raw[field]
    with pytest.raises(ProtocolError) as info:
        decode(json.dumps(raw))
    assert info.value.code is ErrorCode.INVALID_MESSAGE
    assert str(info.value) == f"{kind}: missing required field {field}"


def _wrong_value(value: Any) -> Any:
    if isinstance(value, str):
        return 12
    if isinstance(value, bool | int | float):
        return "twelve"
    return "not an object"


def _cases_wrong_type() -> list[tuple[str, str, str]]:
    return [(k, t, f) for k, t, f in _cases_missing() if f != "type"]


@pytest.mark.parametrize(("kind", "text", "field"), _cases_wrong_type())
def test_wrong_type(kind: str, text: str, field: str) -> None:
    raw = json.loads(text)
    raw[field] = _wrong_value(raw[field])
    with pytest.raises(ProtocolError) as info:
        decode(json.dumps(raw))
    assert info.value.code is ErrorCode.INVALID_MESSAGE
    assert str(info.value).startswith(f"{kind}: $.{field} expected ")


def test_nested_wrong_type_names_the_path() -> None:
    raw = json.loads(encode(SAMPLES[0]))
    raw["device"]["name"] = 3
    with pytest.raises(ProtocolError, match=r"^JOIN: \$\.device\.name expected str, got int$"):
        decode(json.dumps(raw))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "not JSON"),
        ("", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", 'expected a JSON object with a "type", got an array'),
        ("42", 'expected a JSON object with a "type", got a number'),
        ('"JOIN"', 'expected a JSON object with a "type", got a string'),
        ("null", 'expected a JSON object with a "type", got null'),
        ('{"timestamp": 1}', 'message has no "type" field'),
        ('{"type": "DANCE", "timestamp": 1}', "unknown message type 'DANCE'"),
        ('{"type": 7, "timestamp": 1}', "unknown message type 7"),
        ('{"type": "HEARTBEAT", "timestamp": -5}', "HEARTBEAT: $.timestamp expected int >= 0"),
        ('{"type": "HEARTBEAT", "timestamp": 1.5}', "HEARTBEAT: $.timestamp expected int"),
        (
            '{"type": "ERROR", "timestamp": 1, "code": "NOPE", "message": "x"}',
            "ERROR: $.code invalid enum value 'NOPE'",
        ),
    ],
)
def test_bad_frames(text: str | bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(text)
    assert info.value.code is ErrorCode.INVALID_MESSAGE
    assert str(info.value).startswith(message)
    assert info.value.message == str(info.value)


def test_bounds_are_enforced() -> None:
    raw = json.loads(encode(SAMPLES[0]))
    raw["device"]["name"] = "x" * 65
    with pytest.raises(ProtocolError, match="length <= 64"):
        decode(json.dumps(raw))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.text())
def test_arbitrary_text_only_raises_protocol_error(text: str) -> None:
    try:
        decode(text)
    except ProtocolError as exc:
        assert exc.code is ErrorCode.INVALID_MESSAGE
        assert exc.message


@given(st.binary())
def test_arbitrary_bytes_only_raise_protocol_error(data: bytes) -> None:
    try:
        decode(data)
    except ProtocolError as exc:
        assert exc.message


@given(json_values, st.sampled_from([type_name(t) for t in MESSAGE_TYPES] + ["BOGUS"]))
def test_arbitrary_json_only_raises_protocol_error(value: Any, kind: str) -> None:
    for candidate in (value, {"type": kind, "timestamp": 1, "x": value}):
        try:
            message = decode(json.dumps(candidate))
        except ProtocolError as exc:
            assert exc.message
        else:
            assert isinstance(message, MESSAGE_TYPES)


def test_deep_nesting_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode("[" * 100_000 + "]" * 100_000)


def test_should_reconnect_follows_close_codes() -> None:
    assert not protocol.should_reconnect(1000)
    assert not protocol.should_reconnect(1001)
    assert not protocol.should_reconnect(4000)
    assert not protocol.should_reconnect(4001)
    for code in (None, 1006, 1011, 4002, 1008, 1009):
        assert protocol.should_reconnect(code)


# Remote text is data: no control or bidi characters in any string a peer supplies -----

UNSAFE_CHARACTERS = [
    "\x00",
    "\x07",
    "\t",
    "\n",
    "\r",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\u061c",
    "\u200e",
    "\u200f",
    "\u2028",
    "\u202e",
    "\u2066",
    "\u2069",
]

# (message, JSON path as keys and indexes, the path the error names)
STRING_FIELDS: list[tuple[Message, tuple[str | int, ...], str]] = [
    (SAMPLES[1], ("device", "name"), "$.device.name"),
    (SAMPLES[1], ("device", "type"), "$.device.type"),
    (SAMPLES[1], ("device", "id"), "$.device.id"),
    (SAMPLES[1], ("sessionId",), "$.sessionId"),
    (SAMPLES[1], ("resumeToken",), "$.resumeToken"),
    (SAMPLES[0], ("pin",), "$.pin"),
    (SAMPLES[3], ("reason",), "$.reason"),
    (SAMPLES[7], ("session", "name"), "$.session.name"),
    (SAMPLES[7], ("session", "hostName"), "$.session.hostName"),
    (SAMPLES[7], ("clientId",), "$.clientId"),
    (SAMPLES[8], ("members", 1, "name"), "$.members[1].name"),
    (SAMPLES[9], ("member", "name"), "$.member.name"),
    (SAMPLES[12], ("reason",), "$.reason"),
    (SAMPLES[13], ("reason",), "$.reason"),
    (SAMPLES[15], ("message",), "$.message"),
    (SAMPLES[-2], ("by",), "$.by"),
    (SAMPLES[-1], ("by",), "$.by"),
]


def _with(message: Message, path: tuple[str | int, ...], value: str) -> str:
    raw = json.loads(encode(message))
    node = raw
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return json.dumps(raw)


@pytest.mark.parametrize("char", UNSAFE_CHARACTERS, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(
    ("message", "path", "where"),
    STRING_FIELDS,
    ids=[f"{type_name(m)}{w}" for m, _, w in STRING_FIELDS],
)
def test_control_and_bidi_characters_are_refused_with_a_clear_text(
    message: Message, path: tuple[str | int, ...], where: str, char: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(_with(message, path, f"Eve{char}x"))
    assert info.value.code is ErrorCode.INVALID_MESSAGE
    assert str(info.value) == f"{type_name(message)}: {where} contains a control character"


def test_a_forged_log_line_and_terminal_escapes_in_a_name_are_refused() -> None:
    for name in (
        "Eve\n[20:48:09] Grace (host) set a new PIN: 000000",
        "\x1b]0;PWNED\x07\x1b[2J\x1b[31mRED",
    ):
        with pytest.raises(ProtocolError, match=r"^JOIN: \$\.device\.name contains a control"):
            decode(_with(SAMPLES[0], ("device", "name"), name))


@pytest.mark.parametrize(
    "name",
    ["Zoë", "李雷", "👩\u200d💻 Ada", "Ada\u00a0Lovelace", "[/x] Party", "[@click=app.quit]q[/]"],
)
def test_ordinary_unicode_and_markup_lookalikes_are_data_and_decode(name: str) -> None:
    """Only characters that act on a terminal are refused; brackets are the renderer's job."""
    message = decode(_with(SAMPLES[0], ("device", "name"), name))
    assert isinstance(message, Join)
    assert message.device.name == name


def test_length_bounds_still_apply_beside_the_character_rule() -> None:
    with pytest.raises(ProtocolError, match=r"\$\.device\.type expected str of length <= 32"):
        decode(_with(SAMPLES[0], ("device", "type"), "t" * 33))
    with pytest.raises(ProtocolError, match=r"\$\.reason expected str of length <= 1024"):
        decode(_with(SAMPLES[3], ("reason",), "r" * 1025))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("joinedAt", 10**23),
        ("joinedAt", protocol.MAX_WALL_MS + 1),
        ("latency", 1e300),
    ],
)
def test_a_member_with_an_absurd_value_is_refused_at_decode_time(field: str, value: object) -> None:
    member = {
        "id": "dev-a",
        "name": "Ada",
        "isHost": False,
        "connectionStatus": "connected",
        "joinedAt": 1_764_086_400_000,
        field: value,
    }
    frame = json.dumps({"type": "MEMBER_LIST", "timestamp": 1, "members": [member]})
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(frame)
    assert f"$.members[0].{field}" in caught.value.message


def test_a_welcome_with_an_absurd_interval_or_maximum_is_refused() -> None:
    session = {
        "id": "s",
        "name": "S",
        "hostId": "h",
        "hostName": "H",
        "maxMembers": protocol.MAX_MEMBERS + 1,
        "memberCount": 1,
        "protocolVersion": 1,
    }
    welcome = {
        "type": "WELCOME",
        "timestamp": 1,
        "clientId": "dev-a",
        "resumeToken": "t",
        "session": session,
        "heartbeatInterval": 5000,
        "heartbeatTimeout": 15000,
    }
    with pytest.raises(ProtocolError, match=r"maxMembers"):
        protocol.decode(json.dumps(welcome))
    session["maxMembers"] = 10
    with pytest.raises(ProtocolError, match=r"heartbeatInterval"):
        protocol.decode(json.dumps({**welcome, "heartbeatInterval": 10**12}))
    assert isinstance(protocol.decode(json.dumps(welcome)), protocol.Welcome)
