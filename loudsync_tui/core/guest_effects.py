"""What the guest core tells its adapter to do, and what it is told back about the host.

Plain values, so tests compare them. `ConnectionState` lives here, in the core, because
the state machine owns it; the store shows it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.effects import Log, LogLevel
from loudsync_tui.core.epoch import Epoch
from loudsync_tui.protocol import LeftReason, MemberInfo, Message, Track, Welcome

EndCode = Literal["left", "kicked", "closed", "refused", "failed", "untrusted", "pin"]


class ConnectionState(enum.StrEnum):
    """A guest's link to its host."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"


# Inputs from the adapter --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the host said about itself at GET /session, how it said it, and what this
    guest pinned for it before: everything the trust decision needs, read by the adapter."""

    session_id: str
    host_id: str
    session_name: str
    host_name: str
    address: str
    """`HOST:PORT`, as pins at an address are keyed."""
    tls: bool
    fingerprint: str | None
    """Of the certificate the host presented; None over plain HTTP."""
    pinned: str | None = None
    """The fingerprint pinned for this host id, if any."""
    pinned_at_address: str | None = None
    """The fingerprint pinned for this address, whatever host id answered there."""


# Effects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LookUpHost:
    """Ask the host who it is (GET /session) and read this guest's pins for it; answer
    with `host_answered` or `lookup_failed`."""


@dataclass(frozen=True, slots=True)
class PinHost:
    """Remember `fingerprint` for this host id and address: the user verified it."""

    host_id: str
    fingerprint: str
    address: str


@dataclass(frozen=True, slots=True)
class SecurityKnown:
    """Whether the link is encrypted, and the verified fingerprint when it is."""

    encrypted: bool
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a connection to the host now: over TLS to `fingerprint`'s certificate, or plain."""

    tls: bool = False
    fingerprint: str | None = None
    """The verified fingerprint every connection must present (None over plain ws://)."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Transmit:
    message: Message


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: ConnectionState
    attempt: int = 0
    max_attempts: int = 0
    next_attempt_at: float | None = None
    """Monotonic time of the next reconnect attempt, for a countdown."""


@dataclass(frozen=True, slots=True)
class Welcomed:
    welcome: Welcome
    resumed: bool


@dataclass(frozen=True, slots=True)
class MembersReplaced:
    members: list[MemberInfo]


@dataclass(frozen=True, slots=True)
class MembersUpdated:
    members: list[MemberInfo]


@dataclass(frozen=True, slots=True)
class MemberGone:
    member_id: str
    reason: LeftReason


@dataclass(frozen=True, slots=True)
class LatencyMeasured:
    latency: float | None
    """None when there is no link to measure."""


@dataclass(frozen=True, slots=True)
class ClockEstimated:
    """A new estimate of the session clock (see core/clock_sync.py)."""

    estimate: ClockEstimate


@dataclass(frozen=True, slots=True)
class TrackAnnounced:
    """The host's TRACK: what plays next, with its tags."""

    track: Track
    by: str | None = None
    """The DJ whose "next" or "prev" started it (the TRACK's `by`); None: the host."""


@dataclass(frozen=True, slots=True)
class EpochChanged:
    """PLAY, PAUSE or SEEK: from `epoch.t0_us` on, the timeline is this epoch's."""

    epoch: Epoch
    kind: Literal["play", "pause", "seek"]
    by: str | None = None
    """The DJ whose CONTROL caused it (the message's `by`), so the app can say "Alice
    paused"; None: the host did."""


@dataclass(frozen=True, slots=True)
class OutputSet:
    """The host changed this member's volume or latency offset (None: unchanged)."""

    volume: float | None
    latency_offset_ms: float | None


@dataclass(frozen=True, slots=True)
class Ended:
    """The membership is over; `code` says why, `reason` is for people."""

    reason: str
    code: EndCode
    question: str | None = None
    """"untrusted" only: the trust question to put to the user."""
    fingerprint: str | None = None
    """"untrusted" only: the fingerprint the user may accept (None: none may be)."""
    changed: bool = False
    """"untrusted" only: a pinned fingerprint changed (a loud question, not a first meeting)."""
    level: LogLevel = "warning"


GuestEffect = (
    LookUpHost
    | PinHost
    | SecurityKnown
    | Connect
    | Disconnect
    | Transmit
    | StateChanged
    | Welcomed
    | MembersReplaced
    | MembersUpdated
    | MemberGone
    | LatencyMeasured
    | ClockEstimated
    | TrackAnnounced
    | EpochChanged
    | OutputSet
    | Ended
    | Log
)
