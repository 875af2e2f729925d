"""Immutable snapshots of everything the screens show: discovery, hosting, guest, event log.

Each `set()` on the store builds a new snapshot with `dataclasses.replace`; nothing here
is ever mutated, so a widget can compare the slice it drew with the new one cheaply.
Mappings are read-only views over fresh dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.epoch import Epoch
from loudsync_tui.core.guest_effects import ConnectionState  # owned by the core; shown here
from loudsync_tui.core.transport import TrackMeta, TrackStarted
from loudsync_tui.protocol import ConnectionStatus, LeftReason, SyncReport, Track

LogLevel = Literal["info", "warning", "error"]

LOG_LIMIT = 500
"""The event log keeps this many newest entries."""


@dataclass(frozen=True, slots=True)
class Member:
    """A session member as the screens show it."""

    id: str
    name: str
    is_host: bool
    status: ConnectionStatus
    joined_at: int
    latency: float | None = None
    device_type: str = ""
    proven: bool | None = None
    """False: the host admitted it without a device-key proof, so its id may be anyone's;
    None: not said (the host's own row, or a host that does not check keys)."""
    clock_uncertainty_us: float | None = None
    """How well it knows the session clock (µs), as it last reported to the host."""
    address: str = ""
    """The IP the host sees it at ("" on a guest's screen and for the host's own row):
    what kick-and-ban would ban."""
    sync: SyncReport | None = None
    """How its speakers follow the timeline, as it last reported (while it plays audio)."""
    audio: bool = True
    """It takes the audio (False: a remote, which follows the playback state only). Only
    the host knows; a guest's screen shows everyone as taking it."""
    dj: bool = False
    """The host lets it play, pause, seek and skip."""


@dataclass(frozen=True, slots=True)
class DiscoveredSession:
    """A session seen on the LAN, keyed by its mDNS instance name."""

    key: str
    session_id: str
    name: str
    host_name: str
    addresses: tuple[str, ...]
    port: int
    members: int
    max_members: int
    protocol_version: int
    joinable: bool
    why_not: str | None = None
    encrypted: bool = False
    fingerprint: str | None = None
    """Advertised certificate fingerprint; the guest checks the real one against it."""
    pin_required: bool = False
    reachable: bool | None = None
    """Whether a TCP connect to its address and port succeeded last time; None: not
    checked yet. A host killed without a goodbye stays listed until its records expire,
    but stops answering at once."""


def join_refusal(session: DiscoveredSession) -> str | None:
    """Why Browse will not join `session`, None if it may. A PIN is only ever sent inside
    TLS and a real host refuses `--pin` with `--no-tls`, so a plain record that asks for
    a PIN is refused as a likely impostor."""
    if not session.joinable:
        return session.why_not or "cannot join"
    if session.pin_required and not session.encrypted:
        return "PIN without TLS"
    return None


def where(session: DiscoveredSession) -> str:
    """`ADDRESS:PORT` the session is joined at, as Browse shows it."""
    return f"{session.addresses[0] if session.addresses else '?'}:{session.port}"


def same_origin(a: DiscoveredSession, b: DiscoveredSession) -> bool:
    """Whether two records come from one listener (same port, a shared address): an
    update, not a second machine claiming the same session."""
    shared = not a.addresses or not b.addresses or bool(set(a.addresses) & set(b.addresses))
    return a.port == b.port and shared


def rivals(sessions: Mapping[str, DiscoveredSession]) -> dict[str, tuple[DiscoveredSession, ...]]:
    """session id -> the records that claim it, for ids claimed from more than one place.
    Anyone on the LAN can announce any session; two claimants mean one may be an impostor,
    so Browse shows both with a warning instead of picking one."""
    claims: dict[str, list[DiscoveredSession]] = {}
    for session in sessions.values():
        claims.setdefault(session.session_id, []).append(session)
    return {sid: tuple(found) for sid, found in claims.items() if len(found) > 1}


def listed(
    sessions: Mapping[str, DiscoveredSession], session: DiscoveredSession
) -> Mapping[str, DiscoveredSession]:
    """`sessions` once `session` was seen; `sessions` itself when nothing changed.

    Same key and origin: updated in place, keeping what the last check found when the
    address and port are the same (no flicker on a TXT update). A record under a known
    key from another address or port is another machine using the same mDNS name: it gets
    a row of its own (`KEY @ ADDRESS:PORT`), so a rogue announcement never silently
    replaces the row of the session it imitates.
    """
    seen = session
    first = sessions.get(session.key)
    if first is not None and not same_origin(first, session):
        seen = replace(session, key=f"{session.key} @ {where(session)}")
    prior = sessions.get(seen.key)
    if prior is not None and (prior.addresses, prior.port) == (seen.addresses, seen.port):
        seen = replace(seen, reachable=prior.reachable)
    if prior == seen:
        return sessions
    return {**sessions, seen.key: seen}


def unlisted(
    sessions: Mapping[str, DiscoveredSession], key: str
) -> Mapping[str, DiscoveredSession]:
    """`sessions` once the mDNS name `key` is gone: its row goes, with any other machine's
    row under it (a goodbye does not say which of them sent it); `sessions` itself when
    nothing changed."""

    def lost(k: str) -> bool:
        return k == key or k.startswith(f"{key} @ ")

    if not any(lost(k) for k in sessions):
        return sessions
    return {k: v for k, v in sessions.items() if not lost(k)}


@dataclass(frozen=True, slots=True)
class DiscoveryState:
    sessions: Mapping[str, DiscoveredSession] = field(default_factory=lambda: MappingProxyType({}))
    browsing: bool = False
    error: str | None = None
    watched: bool = True
    """Whether the list is on screen; listed hosts are checked for an answer only then."""


@dataclass(frozen=True, slots=True)
class HostingState:
    """The session this app hosts."""

    session_id: str
    session_name: str
    host_id: str
    host_name: str
    address: str
    port: int
    max_members: int
    members: Mapping[str, Member] = field(default_factory=lambda: MappingProxyType({}))
    banned: frozenset[str] = frozenset()
    banned_addresses: frozenset[str] = frozenset()
    ban_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The name of the member each ban (device id or address) was for."""
    running: bool = True
    fingerprint: str | None = None
    """SHA-256 of the host certificate; None when serving plain ws://."""
    pin: str | None = None


@dataclass(frozen=True, slots=True)
class GuestState:
    """The session this app has joined (or is joining)."""

    address: str
    connection: ConnectionState = ConnectionState.DISCONNECTED
    session_id: str | None = None
    session_name: str | None = None
    host_name: str | None = None
    client_id: str | None = None
    max_members: int | None = None
    members: Mapping[str, Member] = field(default_factory=lambda: MappingProxyType({}))
    latency: float | None = None
    clock: ClockEstimate | None = None
    """The session clock as this guest knows it; None before the first estimate."""
    attempt: int = 0
    max_attempts: int = 0
    next_attempt_at: float | None = None
    """Loop time of the next reconnect attempt, for a countdown."""
    ended: str | None = None
    """Why the membership ended (kicked, closed, refused); None while it lasts."""
    ended_code: str | None = None
    encrypted: bool | None = None
    """None until known; False: the session is plain ws:// (warned about)."""
    fingerprint: str | None = None
    """The host's verified certificate fingerprint."""
    trust_question: str | None = None
    """Set with ended_code "untrusted": what the user must decide (the fingerprint shown)."""
    trust_changed: bool = False
    """With "untrusted": the host differs from what was pinned or advertised (a possible
    impostor), as opposed to a host seen for the first time."""


@dataclass(frozen=True, slots=True)
class NowPlaying:
    """The track the session plays, from its TRACK message (or the host's queue)."""

    track_id: int
    title: str
    artist: str | None = None
    album: str | None = None
    duration_ms: int | None = None
    position: int = 0
    """Its place in the queue (0-based), and the queue's length."""
    queue_length: int = 0
    live: bool = False
    """This machine's sound or another live source: no end, no seeking."""

    @classmethod
    def started(cls, started: TrackStarted) -> NowPlaying:
        meta = started.meta
        return cls(
            started.track_id,
            meta.title,
            meta.artist,
            meta.album,
            meta.duration_ms,
            started.position,
            started.queue_length,
            meta.live,
        )

    @classmethod
    def of(cls, track: Track) -> NowPlaying:
        return cls(
            track.track_id,
            track.title,
            track.artist,
            track.album,
            track.duration_ms,
            track.position,
            track.queue_length,
            track.live,
        )


@dataclass(frozen=True, slots=True)
class PlaybackState:
    """What this app plays or follows: host and guest alike."""

    track: NowPlaying | None = None
    epoch: Epoch | None = None
    """The latest epoch; its `sample_at(session time)` is the position in the track."""
    output: str | None = None
    """This app's own speakers: a device name, or why there is no sound (one line)."""
    sync: SyncReport | None = None
    """This app's own output against the timeline; None while nothing plays here."""
    ended: bool = False
    """The queue played to its end."""
    queue: tuple[TrackMeta, ...] = ()
    """The host's queue (a guest sees only the current track)."""
    queue_index: int = 0
    """The current track's place in `queue`."""
    loop: bool = False
    codec: str | None = None
    """How the host sends audio ("opus", "pcm", "flac"); None until known."""
    buffer_ms: float | None = None
    """How far ahead of playing audio is sent."""
    clock: ClockEstimate | None = None
    """The host's own session clock (exact); a guest uses `GuestState.clock`."""
    silent: str | None = None
    """Why this app plays no sound (one line, what to do about it); None otherwise."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    at: int
    """Wall clock, ms since the epoch."""
    level: LogLevel
    text: str


@dataclass(frozen=True, slots=True)
class AppState:
    discovery: DiscoveryState = field(default_factory=DiscoveryState)
    hosting: HostingState | None = None
    guest: GuestState | None = None
    playback: PlaybackState = field(default_factory=PlaybackState)
    log: tuple[LogEntry, ...] = ()


__all__ = [
    "LOG_LIMIT",
    "AppState",
    "ConnectionState",
    "DiscoveredSession",
    "DiscoveryState",
    "GuestState",
    "HostingState",
    "LeftReason",
    "LogEntry",
    "Member",
    "NowPlaying",
    "PlaybackState",
    "join_refusal",
    "rivals",
    "same_origin",
    "where",
]
