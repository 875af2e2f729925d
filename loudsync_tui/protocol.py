"""The LOUDSYNC wire protocol: JSON text frames, one msgspec Struct per message.

The format is shared with other clients (the original TypeScript app, scripts), so
field names and shapes here are fixed; docs/protocol.md documents them and a test
decodes every example in that file. msgspec does all validation: a frame either
decodes into exactly one of the message types below or raises `ProtocolError`.
"""

from __future__ import annotations

import enum
import math
import time
from typing import Annotated, Any, Final, Literal, TypeGuard, get_args

import msgspec

from loudsync_tui.text import UNSAFE_CLASS

PROTOCOL_VERSION: Final = 1
"""The version this build speaks; a JOIN with any other version is refused."""

SUPPORTED_VERSIONS: Final = frozenset({PROTOCOL_VERSION})


class ErrorCode(enum.StrEnum):
    """Why the host refused or rejected something; sent in ERROR messages."""

    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_FULL = "SESSION_FULL"
    ALREADY_JOINED = "ALREADY_JOINED"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    UNAUTHORIZED = "UNAUTHORIZED"
    VERSION_MISMATCH = "VERSION_MISMATCH"
    RATE_LIMITED = "RATE_LIMITED"
    NOT_ALLOWED = "NOT_ALLOWED"
    """A joined member asked for something its role does not allow (CONTROL without
    being a DJ); nothing changed, and the connection stays open."""


class CloseCode(enum.IntEnum):
    """WebSocket close codes the host uses; they tell a guest whether to reconnect."""

    NORMAL = 1000
    """After LEAVE."""
    GOING_AWAY = 1001
    """After SESSION_CLOSED."""
    ABNORMAL = 1006
    """No close frame at all (link lost); never sent, only observed."""
    POLICY = 1008
    """No JOIN in time, or rate limit exceeded."""
    TOO_BIG = 1009
    """A frame over the size limit."""
    INTERNAL_ERROR = 1011
    KICKED = 4000
    """After KICKED."""
    JOIN_REFUSED = 4001
    """After an ERROR that refuses a JOIN."""
    HEARTBEAT_TIMEOUT = 4002


NO_RECONNECT_CLOSE_CODES: Final = frozenset(
    {CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.KICKED, CloseCode.JOIN_REFUSED}
)
"""A guest never reconnects after these; every other close (or none) is abnormal."""


def should_reconnect(close_code: int | None) -> bool:
    """Whether a guest whose connection closed with `close_code` may try to resume."""
    return close_code not in NO_RECONNECT_CLOSE_CODES


def now_ms() -> int:
    """Wall clock in integer milliseconds since the Unix epoch, as every `timestamp`."""
    return time.time_ns() // 1_000_000


# Bounds that keep one peer from handing another absurd values; generous for people.
# No string a peer sends may hold a character a terminal acts on or that reorders text
# (see loudsync_tui/text.py): names and reasons reach screens, logs and other guests.
PRINTABLE: Final = f"^[^{UNSAFE_CLASS}]*$"
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=PRINTABLE)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=PRINTABLE)]
Text = Annotated[str, msgspec.Meta(max_length=1024, pattern=PRINTABLE)]
Token = Annotated[str, msgspec.Meta(max_length=256, pattern=PRINTABLE)]
MAX_WALL_MS: Final = 32_503_680_000_000
"""3000-01-01 in ms since the epoch: later timestamps are refused, so a date a peer sends
always formats (`10**23` would overflow the local-time conversion)."""
MAX_MEMBERS: Final = 10_000
"""The most members a session may have; a guest holds no more, whatever a host claims."""
MAX_QUEUE: Final = 1_000_000
Volume = Annotated[float, msgspec.Meta(ge=0, le=1.5)]
LatencyOffset = Annotated[float, msgspec.Meta(ge=-2000, le=2000)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=MAX_WALL_MS)]
PositiveMillis = Annotated[int, msgspec.Meta(gt=0, le=86_400_000)]
"""A duration such as the heartbeat interval: at most a day."""
Latency = Annotated[float, msgspec.Meta(ge=0, le=3_600_000)]
Micros = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
"""A reading of a monotonic clock in integer microseconds (the session clock, or a guest's)."""
ConnectionStatus = Literal["connected", "disconnected", "reconnecting", "pending"]
LeftReason = Literal["left", "timeout", "kicked", "disconnected"]


class DeviceInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """The joining device: its stable id, display name and kind (e.g. "terminal")."""

    id: Id
    name: Name
    type: Annotated[str, msgspec.Meta(max_length=32, pattern=PRINTABLE)]


class MemberInfo(msgspec.Struct, frozen=True, rename="camel", gc=False):
    """One member as every peer sees it; the host is a member too (`is_host`).

    Untracked by the garbage collector (`gc=False`): it holds only strings, numbers and
    flags, so it can never be part of a cycle, and a host or guest holds one per member."""

    id: Id
    name: Name
    is_host: bool
    connection_status: ConnectionStatus
    joined_at: Millis
    latency: Latency | None = None
    proven: bool | msgspec.UnsetType = msgspec.UNSET
    """True: the host verified the member's device key at JOIN; False: the host let it in
    without one (`allow_unproven`). Absent for the host's own row and from hosts that do
    not check keys, so the encoding of older peers is unchanged."""
    dj: bool = False
    """The host made this member a DJ: its CONTROL messages play, pause, seek and skip the
    host's music. Absent (older peers): not a DJ."""


class SessionInfo(msgspec.Struct, frozen=True, rename="camel"):
    """What a guest learns about the session in WELCOME."""

    id: Id
    name: Name
    host_id: Id
    host_name: Name
    max_members: Annotated[int, msgspec.Meta(ge=1, le=MAX_MEMBERS)]
    member_count: Annotated[int, msgspec.Meta(ge=0, le=MAX_MEMBERS)]
    protocol_version: Annotated[int, msgspec.Meta(ge=0)]


class SessionAnswer(msgspec.Struct, frozen=True, rename="camel"):
    """The host's answer to a plain HTTP `GET /session`: its SessionInfo plus whether a
    PIN is needed, so a guest given only `HOST[:PORT]` learns the session id. A guest
    needs the id and names only; the counts may be absent (None) from other hosts."""

    id: Id
    name: Name
    host_id: Id
    host_name: Name
    max_members: Annotated[int, msgspec.Meta(ge=1, le=MAX_MEMBERS)] | None = None
    member_count: Annotated[int, msgspec.Meta(ge=0, le=MAX_MEMBERS)] | None = None
    protocol_version: Annotated[int, msgspec.Meta(ge=0)] | None = None
    pin_required: bool = False

    @classmethod
    def of(cls, info: SessionInfo, pin_required: bool) -> SessionAnswer:
        return cls(
            id=info.id,
            name=info.name,
            host_id=info.host_id,
            host_name=info.host_name,
            max_members=info.max_members,
            member_count=info.member_count,
            protocol_version=info.protocol_version,
            pin_required=pin_required,
        )


class _Message(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    rename="camel",
    tag_field="type",
    omit_defaults=True,
):
    timestamp: Millis
    """The sender's wall clock when it sent the message (ms since the epoch)."""


# Guest to host ---------------------------------------------------------------


class JoinProof(msgspec.Struct, frozen=True, rename="camel"):
    """Possession of the device key: the Ed25519 public key and its signature over the
    connection's challenge (see security/device_key.py), both base64url without padding."""

    public_key: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    signature: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Join(_Message, tag="JOIN", frozen=True):
    session_id: Id
    protocol_version: int
    device: DeviceInfo
    resume_token: Token | None = None
    pin: Annotated[str, msgspec.Meta(max_length=32, pattern=PRINTABLE)] | None = None
    """The session PIN, when the host asks for one; only ever sent inside TLS."""
    proof: JoinProof | None = None
    """Proves that the device holds the key its id is derived from; absent from Phase 1
    clients, which only a host allowing unproven guests admits."""
    audio: bool | None = None
    """True: send this member the audio frames. False or absent (Phase 1 clients, remote
    controls, screens without speakers): only the playback state, never binary frames."""


class Leave(_Message, tag="LEAVE", frozen=True):
    reason: Text | None = None


class Heartbeat(_Message, tag="HEARTBEAT", frozen=True):
    pass


class Ping(_Message, tag="PING", frozen=True):
    latency: Latency | None = None
    """The sender's last measured round trip in ms, so the host can show it."""
    sent_us: Micros | None = None
    """The guest's monotonic clock (µs) when it wrote this PING: the session clock's t1."""
    clock_uncertainty_us: Annotated[float, msgspec.Meta(ge=0, le=3_600_000_000)] | None = None
    """How well the guest knows the session clock now (µs), so the host can show it."""
    sync: SyncReport | None = None
    """How the guest's speakers follow the timeline, while it plays audio."""


ControlAction = Literal["play", "pause", "toggle", "seek", "next", "prev"]
CONTROL_ACTIONS: Final[frozenset[str]] = frozenset(get_args(ControlAction))
MAX_SEEK_SECONDS: Final = 3600.0
SeekSeconds = Annotated[float, msgspec.Meta(ge=-MAX_SEEK_SECONDS, le=MAX_SEEK_SECONDS)]
"""A relative seek: at most an hour either way (JSON has no NaN or infinity, and a number
too large for a float is refused too)."""


def is_control_action(action: str) -> TypeGuard[ControlAction]:
    """Whether `action` is one a CONTROL may carry."""
    return action in CONTROL_ACTIONS


def is_seek_seconds(seconds: float) -> bool:
    """Whether `seconds` is a CONTROL `seconds` the host accepts: finite, within an hour."""
    return math.isfinite(seconds) and abs(seconds) <= MAX_SEEK_SECONDS


class Control(_Message, tag="CONTROL", frozen=True):
    """A DJ drives the host's playback: play, pause, toggle, seek (by `seconds`, relative:
    negative goes back), next or prev. The host carries it out for a DJ and answers anyone
    else with ERROR NOT_ALLOWED; the PLAY, PAUSE, SEEK or TRACK that follows names the DJ
    in `by`."""

    action: ControlAction
    seconds: SeekSeconds = 0.0
    """For "seek" only: how far to move, in seconds (ignored by the other actions)."""


class SyncReport(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """A playing member's output against the session timeline, for the host's table."""

    error_us: Annotated[float, msgspec.Meta(ge=-3_600_000_000, le=3_600_000_000)]
    """Where its output is minus where it should be (µs): positive plays late."""
    underruns: Annotated[int, msgspec.Meta(ge=0, le=2**31)]
    buffer_ms: Annotated[float, msgspec.Meta(ge=0, le=3_600_000)]
    rate_ratio: Annotated[float, msgspec.Meta(gt=0, le=2)]
    """Source samples per output frame: 1 plus the drift being corrected."""
    volume: Volume | None = None
    latency_offset_ms: LatencyOffset | None = None
    """The member's own output settings, so the host can show and change them."""


# Host to guest ---------------------------------------------------------------


class Welcome(_Message, tag="WELCOME", frozen=True):
    client_id: Id
    resume_token: Token
    session: SessionInfo
    heartbeat_interval: PositiveMillis
    heartbeat_timeout: PositiveMillis


class MemberList(_Message, tag="MEMBER_LIST", frozen=True):
    members: list[MemberInfo]


class MemberJoined(_Message, tag="MEMBER_JOINED", frozen=True):
    member: MemberInfo


class MemberLeft(_Message, tag="MEMBER_LEFT", frozen=True):
    member_id: Id
    reason: LeftReason


class MemberUpdated(_Message, tag="MEMBER_UPDATED", frozen=True):
    members: list[MemberInfo]
    """Only the members whose status or latency changed since the last update."""


class Kicked(_Message, tag="KICKED", frozen=True):
    reason: Text


class SessionClosed(_Message, tag="SESSION_CLOSED", frozen=True):
    reason: Text


class Pong(_Message, tag="PONG", frozen=True):
    ping_timestamp: Millis
    received_at: Millis
    ping_sent_us: Micros | None = None
    """The PING's `sentUs`, echoed (t1)."""
    received_us: Micros | None = None
    """Session clock (µs since the session started) when the host read the PING (t2)."""
    sent_us: Micros | None = None
    """Session clock when the host wrote this PONG (t3)."""


class SetOutput(_Message, tag="SET_OUTPUT", frozen=True):
    """The host changes a member's output: its volume (0 to 1.5, software, ramped) or its
    latency offset (ms its speakers sound later than they report; they play that much
    earlier). The member applies it, remembers it, and reports it in its PING."""

    volume: Volume | None = None
    latency_offset_ms: LatencyOffset | None = None


TrackId = Annotated[int, msgspec.Meta(ge=0, le=2**31)]
Sample = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
"""A sample index in a track, at 48 kHz."""
EpochNumber = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
Tag = Annotated[str, msgspec.Meta(max_length=200, pattern=PRINTABLE)]


class Track(_Message, tag="TRACK", frozen=True):
    """The track the next epochs play, with its tags, before any PLAY of it."""

    track_id: TrackId
    title: Tag
    artist: Tag | None = None
    album: Tag | None = None
    duration_ms: Annotated[int, msgspec.Meta(ge=0, le=2**40)] | None = None
    position: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUEUE)] = 0
    """Its place in the host's queue (0 = first), and the queue's length."""
    queue_length: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUEUE)] = 0
    by: Name | None = None
    """The name of the DJ whose CONTROL (next or prev) started it; absent when the host
    did, or the queue moved on by itself."""
    live: bool = False
    """A live source (the host machine's own sound): no end, and SEEK is refused."""


class _EpochMessage(_Message, frozen=True):
    """A new epoch: sample `sample` of track `track_id` plays at session time `at_us`, and
    on at 48 kHz while playing. Audio of older epochs is dropped on receipt."""

    epoch: EpochNumber
    track_id: TrackId
    at_us: Micros
    sample: Sample
    by: Name | None = None
    """The name of the DJ whose CONTROL caused it; absent when the host did."""


class Play(_EpochMessage, tag="PLAY", frozen=True):
    pass


class Pause(_EpochMessage, tag="PAUSE", frozen=True):
    """Output stops at `at_us`, with `sample` the next one to play on resume."""


class Seek(_EpochMessage, tag="SEEK", frozen=True):
    playing: bool = True
    """A seek while paused moves the position and stays paused."""


class Error(_Message, tag="ERROR", frozen=True):
    code: ErrorCode
    message: Text
    details: dict[str, Any] | None = None


Message = (
    Join
    | Leave
    | Heartbeat
    | Ping
    | Control
    | Welcome
    | MemberList
    | MemberJoined
    | MemberLeft
    | MemberUpdated
    | Kicked
    | SessionClosed
    | Pong
    | Track
    | Play
    | Pause
    | Seek
    | SetOutput
    | Error
)

MESSAGE_TYPES: Final[tuple[type[_Message], ...]] = (
    Join,
    Leave,
    Heartbeat,
    Ping,
    Control,
    Welcome,
    MemberList,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    Kicked,
    SessionClosed,
    Pong,
    Track,
    Play,
    Pause,
    Seek,
    SetOutput,
    Error,
)


def type_name(message: _Message | type[_Message]) -> str:
    """The wire `type` of a message or message class, e.g. "JOIN"."""
    tag = msgspec.inspect.type_info(message if isinstance(message, type) else type(message)).tag  # type: ignore[attr-defined]
    return str(tag)


class ProtocolError(Exception):
    """A frame that is not a valid LOUDSYNC message, with a text a person can act on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_encoder: Final = msgspec.json.Encoder()
_decoder: Final[msgspec.json.Decoder[Message]] = msgspec.json.Decoder(Message)
_peek_decoder: Final = msgspec.json.Decoder()


def encode(message: Message) -> str:
    """One message as a JSON text frame."""
    return _encoder.encode(message).decode()


def decode(text: str | bytes) -> Message:
    """Parse and validate one frame; anything else raises `ProtocolError(INVALID_MESSAGE)`."""
    try:
        return _decoder.decode(text)
    except msgspec.ValidationError as exc:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, _explain(text, str(exc))) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"not JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "JSON nested too deeply") from None


def _explain(text: str | bytes, error: str) -> str:
    """Turn msgspec's "Expected `str`, got `int` - at `$.x`" into "JOIN: $.x expected str, ..."."""
    try:
        raw = _peek_decoder.decode(text)
    except RecursionError:
        return "JSON nested too deeply"
    except msgspec.DecodeError as exc:  # validation can fail before a syntax error is seen
        return f"not JSON: {exc}"
    kind = raw.get("type") if isinstance(raw, dict) else None
    if not isinstance(raw, dict):
        got = type(raw).__name__ if raw is not None else "null"
        return f'expected a JSON object with a "type", got {_json_kind(got)}'
    if kind is None:
        return 'message has no "type" field'
    if not isinstance(kind, str) or kind not in _TAGS:
        return f"unknown message type {kind!r}"
    detail, _, path = error.partition(" - at ")
    if "matching regex" in detail:  # PRINTABLE is the only pattern: say what it means
        detail = "contains a control character"
    detail = detail.replace("`", "").removeprefix("Object ")
    detail = f"{detail[:1].lower()}{detail[1:]}"
    if path:
        detail = f"{path.strip('`')} {detail}"
    return f"{kind}: {detail}"


def _json_kind(python_name: str) -> str:
    return {
        "list": "an array",
        "int": "a number",
        "float": "a number",
        "str": "a string",
        "bool": "a boolean",
    }.get(python_name, python_name)


_TAGS: Final = frozenset(type_name(t) for t in MESSAGE_TYPES)
