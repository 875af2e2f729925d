"""What the cores ask their adapters to do; plain values, so tests can compare them.

Connections are opaque ids (`ConnId`) chosen by the adapter; the cores never see a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from loudsync_tui.protocol import ControlAction, LeftReason, MemberInfo, Message, SyncReport

ConnId = int
LogLevel = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Send:
    conn: ConnId
    message: Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """One message to many connections; the adapter encodes it once."""

    conns: tuple[ConnId, ...]
    message: Message


@dataclass(frozen=True, slots=True)
class Close:
    conn: ConnId
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class AudioWanted:
    """A member that takes audio just joined: the streamer sends it what is still to play."""

    conn: ConnId


# Events the host adapter turns into store actions and log lines ---------------


@dataclass(frozen=True, slots=True)
class MemberAdded:
    member: MemberInfo
    device_type: str
    address: str = ""
    """The IP it joined from: the host's screen says what banning it would keep out (never
    sent to guests, so not in MemberInfo)."""
    audio: bool = False
    """It asked for the audio at JOIN (False: a remote)."""


@dataclass(frozen=True, slots=True)
class MemberChanged:
    member: MemberInfo
    device_type: str
    address: str = ""
    """The IP its connection now comes from (a resume may come from another one)."""
    clock_uncertainty_us: float | None = None
    """How well it knows the session clock, as it last said (the host's table only)."""
    sync: SyncReport | None = None
    """How its speakers follow the timeline, as it last said (while it plays audio)."""
    audio: bool = False


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    member_id: str
    name: str
    reason: LeftReason


@dataclass(frozen=True, slots=True)
class BansChanged:
    """The banned device ids and addresses, after a kick or a lifted ban, with the name of
    the member each ban was for, so the bans list reads as people, not ids."""

    devices: frozenset[str]
    addresses: frozenset[str]
    names: tuple[tuple[str, str], ...] = ()
    """(device id or address, the kicked member's name) for each ban."""


@dataclass(frozen=True, slots=True)
class PinChanged:
    """The PIN new joins need from now on (None: none); the core is its only keeper."""

    pin: str | None


@dataclass(frozen=True, slots=True)
class ControlRequested:
    """A DJ asked to drive playback: the adapter carries `action` out on the host's
    transport ("seek" moves by `seconds`), and names `name` in the `by` of the TRACK or
    epoch message that follows. Only a DJ's CONTROL becomes this; anyone else's is
    answered with ERROR NOT_ALLOWED by the core."""

    member_id: str
    name: str
    action: ControlAction
    seconds: float
    """As the CONTROL said it (0 when it did not): checked finite and within an hour."""


LEFT_WORDS: dict[LeftReason, str] = {
    "left": "left",
    "timeout": "timed out",
    "kicked": "was removed by the host",
    "disconnected": "disconnected",
}
"""How a log line says why a member is gone, on the host's side and the guests'."""


@dataclass(frozen=True, slots=True)
class Log:
    level: LogLevel
    text: str


HostEffect = (
    Send
    | Broadcast
    | Close
    | MemberAdded
    | MemberChanged
    | MemberRemoved
    | BansChanged
    | PinChanged
    | AudioWanted
    | ControlRequested
    | Log
)
