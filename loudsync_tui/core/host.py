"""The host's session rules, without I/O.

`HostSession` owns the member list and every rule about it: JOIN checks in their
documented order, resume, heartbeat deadlines, rate limits, kick and ban, the DJ role
(who may CONTROL playback), and the batching of MEMBER_UPDATED. Each input (a connection
opened, a frame from it, the link dropping, a tick, a host command) returns the effects
to carry out. The server adapter only moves frames and carries out effects.

Why one file past 400 lines: it is one state machine over one member table, and its
rules interlock (a JOIN's checks read bans, held places, PIN guesses and resume tokens
that kick, tick and disconnect change), so they are read together, as h11 keeps its
whole state machine in one module. What stands alone lives beside it: the effects
(effects.py), the latency rule (latency.py), the rate limit, the PIN guard.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from msgspec import UNSET

from loudsync_tui.config import HostConfig
from loudsync_tui.core.clock import Clock
from loudsync_tui.core.effects import (
    LEFT_WORDS,
    AudioWanted,
    BansChanged,
    Broadcast,
    Close,
    ConnId,
    ControlRequested,
    HostEffect,
    Log,
    MemberAdded,
    MemberChanged,
    MemberRemoved,
    PinChanged,
    Send,
)
from loudsync_tui.core.latency import latency_changed, uncertainty_changed
from loudsync_tui.core.ratelimit import TokenBucket
from loudsync_tui.protocol import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    CloseCode,
    ConnectionStatus,
    Control,
    Error,
    ErrorCode,
    Heartbeat,
    Join,
    Kicked,
    Leave,
    LeftReason,
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
    SyncReport,
    Track,
    Welcome,
    decode,
    type_name,
)
from loudsync_tui.security.device_key import is_key_id, verify_join
from loudsync_tui.security.pin import PinGuard, pin_matches


def host_of(address: str) -> str:
    """The IP part of "ip:port" or "[v6]:port"; bans and PIN limits apply per IP."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    return address.rpartition(":")[0] if address.count(":") == 1 else address


@dataclass(slots=True)
class _Conn:
    id: ConnId
    address: str
    opened_at: float
    bucket: TokenBucket
    challenge: str | None = None
    """The nonce the adapter sent in this connection's handshake; a JOIN proof signs it."""
    member_id: str | None = None
    closing: bool = False

    @property
    def ip(self) -> str:
        return host_of(self.address)


@dataclass(slots=True)
class _Member:
    id: str
    name: str
    device_type: str
    joined_at: int
    is_host: bool = False
    conn: ConnId | None = None
    resume_token: str = ""
    status: ConnectionStatus = "connected"
    latency: float | None = None
    last_seen: float = 0.0
    dropped_at: float | None = None
    ip: str = ""
    sent_status: ConnectionStatus = "connected"
    sent_latency: float | None = None
    proven: bool | None = None
    """Whether the JOIN proved the device key; None for the host's own row."""
    clock_uncertainty_us: float | None = None
    audio: bool = False
    """It asked for the audio frames at JOIN (False: the playback state only)."""
    sync: SyncReport | None = None
    dj: bool = False
    """The host let it drive playback (CONTROL). It belongs to this record: a resume keeps
    it; a leave, kick or drop that runs out ends it with the record."""
    row: MemberInfo | None = None
    """`info()` as last made, kept for the next MEMBER_LIST: at 1,000 members each join
    would otherwise make 1,000 rows again. Whatever changes a field the row shows sets
    this to None (name, status, latency, dj; the rest never change)."""

    def info(self) -> MemberInfo:
        if self.row is None:
            self.row = self._make_row()
        return self.row

    def _make_row(self) -> MemberInfo:
        return MemberInfo(
            self.id,
            self.name,
            self.is_host,
            self.status,
            self.joined_at,
            self.latency,
            UNSET if self.proven is None else self.proven,
            self.dj,
        )

    def changed(self) -> MemberChanged:
        return MemberChanged(
            self.info(), self.device_type, self.ip, self.clock_uncertainty_us, self.sync, self.audio
        )


@dataclass(slots=True)
class _Pending:
    """Members whose status or latency changed since the last MEMBER_UPDATED."""

    ids: set[str] = field(default_factory=set)
    shown: set[str] = field(default_factory=set)
    """...and those whose change a MEMBER_LIST already showed a newcomer: the next batch
    carries them even if they changed back, or the newcomer would keep the passing value."""
    last_sent: float = float("-inf")


class HostSession:
    def __init__(
        self,
        config: HostConfig,
        session_id: str,
        clock: Clock,
        *,
        fingerprint: str | None = None,
    ) -> None:
        self.config = config
        self.session_id = session_id
        self.clock = clock
        self.started_us = clock.monotonic_us()
        """The session clock's zero, on this host's monotonic clock."""
        self._received_us = 0
        self.fingerprint = fingerprint
        """The host certificate's fingerprint (None: plain ws://). JOIN proofs sign it, so
        a proof made for another host fails here; the adapter sets it before listening."""
        self.closed = False
        self._conns: dict[ConnId, _Conn] = {}
        self._members: dict[str, _Member] = {}
        self._banned: set[str] = set()
        self._banned_ips: set[str] = set()
        self._ban_names: dict[str, str] = {}
        """Who each ban was for: the bans list shows names, not ids and addresses."""
        self.pin = config.pin or None
        self._pin_guard = PinGuard()
        self._pending = _Pending()
        self._now_playing: list[Track | Play | Pause | Seek] = []
        """The current TRACK and epoch message: a member that joins late gets them."""
        host = _Member(
            id=config.host_id,
            name=config.host_name,
            device_type="host",
            joined_at=clock.wall_ms(),
            is_host=True,
        )
        self._members[host.id] = host

    # Read-only views ------------------------------------------------------------

    @property
    def members(self) -> list[MemberInfo]:
        return [m.info() for m in self._members.values()]

    @property
    def member_count(self) -> int:
        """len(members), without making the rows."""
        return len(self._members)

    @property
    def banned(self) -> frozenset[str]:
        return frozenset(self._banned)

    @property
    def banned_addresses(self) -> frozenset[str]:
        return frozenset(self._banned_ips)

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    def session_info(self) -> SessionInfo:
        return SessionInfo(
            id=self.session_id,
            name=self.config.session_name,
            host_id=self.config.host_id,
            host_name=self.config.host_name,
            max_members=self.config.max_members,
            member_count=len(self._members),
            protocol_version=PROTOCOL_VERSION,
        )

    def member_of(self, conn: ConnId) -> str | None:
        c = self._conns.get(conn)
        return None if c is None else c.member_id

    # Inputs ---------------------------------------------------------------------

    def connected(
        self, conn: ConnId, address: str = "", *, challenge: str | None = None
    ) -> list[HostEffect]:
        """A connection opened; `challenge` is the nonce its handshake response carried."""
        now = self.clock.monotonic()
        self._conns[conn] = _Conn(
            conn,
            address,
            now,
            TokenBucket(self.config.rate_per_second, self.config.rate_burst, now),
            challenge,
        )
        if self.closed:
            self._conns[conn].closing = True  # nothing it sends is taken any more
            return [Close(conn, CloseCode.GOING_AWAY, "session closed")]
        return []

    @property
    def session_clock_us(self) -> int:
        """The session clock: µs since the session started, on this host's monotonic clock."""
        return self.clock.monotonic_us() - self.started_us

    def received(
        self, conn: ConnId, data: str | bytes, at_us: int | None = None
    ) -> list[HostEffect]:
        """A frame from `conn`; `at_us`: the monotonic µs it was read (default: now), the
        PING's t2 on the session clock."""
        c = self._conns.get(conn)
        if c is None or c.closing:
            return []
        self._received_us = (self.clock.monotonic_us() if at_us is None else at_us) - (
            self.started_us
        )
        now = self.clock.monotonic()
        if not c.bucket.take(now):
            return self._rate_limited(c)
        try:
            if isinstance(data, bytes):
                raise ProtocolError(
                    ErrorCode.INVALID_MESSAGE, "binary frames are not part of the protocol"
                )
            message = decode(data)
        except ProtocolError as exc:
            if c.member_id is None:
                return self._refuse(c, exc.code, exc.message)
            self._members[c.member_id].last_seen = now
            return [Send(conn, self._error(exc.code, exc.message))]
        if c.member_id is None:
            if not isinstance(message, Join):
                return self._refuse(
                    c, ErrorCode.INVALID_MESSAGE, f"expected JOIN first, got {type_name(message)}"
                )
            return self._join(c, message)
        member = self._members[c.member_id]
        member.last_seen = now
        return self._on_member_message(c, member, message)

    def disconnected(self, conn: ConnId) -> list[HostEffect]:
        """The connection is gone (closed by either side, or the link dropped)."""
        c = self._conns.pop(conn, None)
        if c is None or c.member_id is None:
            return []
        member = self._members.get(c.member_id)
        if member is None or member.conn != conn:
            return []
        if self.closed:  # everyone was told the session ended: no place to hold, no drop
            self._members.pop(member.id, None)
            return []
        member.conn = None
        member.dropped_at = self.clock.monotonic()
        self._set_status(member, "reconnecting")
        return [
            member.changed(),
            Log("warning", f"{member.name} dropped; holding their place for a resume"),
        ]

    def tick(self) -> list[HostEffect]:
        """Deadlines: JOIN within the join timeout, heartbeats, held places, batched updates."""
        now = self.clock.monotonic()
        effects: list[HostEffect] = []
        for c in list(self._conns.values()):
            if c.closing:
                continue
            if c.member_id is None and now - c.opened_at >= self.config.join_timeout:
                c.closing = True
                effects.append(Close(c.id, CloseCode.POLICY, "no JOIN in time"))
        timeout = self.config.heartbeat_timeout
        for member in list(self._members.values()):
            if member.is_host:
                continue
            if member.conn is not None and self._conns[member.conn].closing:
                continue  # already being closed; its disconnect will follow
            if member.conn is not None and now - member.last_seen >= timeout:
                effects.append(Close(member.conn, CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout"))
                self._conns[member.conn].closing = True
                effects += self._remove(member, "timeout")
            elif member.dropped_at is not None and now - member.dropped_at >= timeout:
                effects += self._remove(member, "disconnected")
        self._pin_guard.sweep(now)
        effects += self._flush_updates(now)
        return effects

    def kick(
        self,
        member_id: str,
        reason: str = "You were removed by the host",
        *,
        ban_address: bool = False,
    ) -> list[HostEffect]:
        """Remove a member and ban its device (and, if asked, the address it came from)."""
        member = self._members.get(member_id)
        if member is None or member.is_host:
            return []
        if ban_address and member.ip:
            self._banned_ips.add(member.ip)
            self._ban_names[member.ip] = member.name
        self._ban_names[member_id] = member.name
        effects: list[HostEffect] = []
        if member.conn is not None:
            effects.append(Send(member.conn, Kicked(timestamp=self.clock.wall_ms(), reason=reason)))
            effects.append(Close(member.conn, CloseCode.KICKED, "kicked"))
            self._conns[member.conn].closing = True
        self._banned.add(member_id)
        effects.append(self._bans())
        effects += self._remove(member, "kicked")
        return effects

    def lift_ban(self, key: str) -> list[HostEffect]:
        """Let a banned device id or address join again."""
        if key not in self._banned and key not in self._banned_ips:
            return []
        self._banned.discard(key)
        self._banned_ips.discard(key)
        name = self._ban_names.pop(key, key)
        return [
            self._bans(),
            Log("info", f"Ban on {name} ({key}) lifted" if name != key else f"Ban on {key} lifted"),
        ]

    def set_pin(self, pin: str | None) -> list[HostEffect]:
        """A new PIN (or none) for joins from now on; members already in stay."""
        self.pin = pin or None
        return [PinChanged(self.pin), Log("info", "PIN changed" if pin else "PIN removed")]

    def set_dj(self, member_id: str, dj: bool) -> list[HostEffect]:
        """Make a member a DJ (`dj`), or take the role back; everyone is told at once."""
        member = self._members.get(member_id)
        if member is None:
            return [Log("warning", f"No member {member_id!r} to change the DJ role of")]
        if member.is_host:
            return [Log("warning", "The host has no DJ role: it controls playback anyway")]
        if member.dj == dj:
            return []
        member.dj = dj
        member.row = None
        effects: list[HostEffect] = []
        conns = self._joined_conns()
        if conns:
            # Not batched like status and latency: a role is rare, and its holder should be
            # able to use it (or stop) at once. Everything in the row is sent as it is now.
            member.sent_status, member.sent_latency = member.status, member.latency
            update = MemberUpdated(timestamp=self.clock.wall_ms(), members=[member.info()])
            effects.append(Broadcast(conns, update))
        effects.append(member.changed())
        text = f"{member.name} is now a DJ" if dj else f"{member.name} is no longer a DJ"
        effects.append(Log("info", text))
        return effects

    def _bans(self) -> BansChanged:
        names = tuple(sorted(self._ban_names.items()))
        return BansChanged(frozenset(self._banned), frozenset(self._banned_ips), names)

    def stop(self, reason: str = "The host ended the session") -> list[HostEffect]:
        """SESSION_CLOSED to every connection, then close them all with 1001."""
        self.closed = True
        conns = tuple(c.id for c in self._conns.values() if not c.closing)
        effects: list[HostEffect] = []
        if conns:
            joined = tuple(c for c in conns if self._conns[c].member_id is not None)
            if joined:
                message = SessionClosed(timestamp=self.clock.wall_ms(), reason=reason)
                effects.append(Broadcast(joined, message))
            for conn in conns:
                self._conns[conn].closing = True
                effects.append(Close(conn, CloseCode.GOING_AWAY, "session closed"))
        effects.append(Log("info", f"Session closed: {reason}"))
        return effects

    # JOIN -----------------------------------------------------------------------

    def _join(self, c: _Conn, join: Join) -> list[HostEffect]:
        expired: list[HostEffect] = []
        held = self._members.get(join.device.id)
        if held is not None and self._hold_expired(held):
            expired = self._remove(held, "disconnected")  # due, though the tick has not run
        return expired + self._admit(c, join)

    def _admit(self, c: _Conn, join: Join) -> list[HostEffect]:
        cfg = self.config
        if join.protocol_version not in SUPPORTED_VERSIONS:
            return self._refuse(
                c,
                ErrorCode.VERSION_MISMATCH,
                f"protocol version {join.protocol_version} is not supported",
                {"supported": sorted(SUPPORTED_VERSIONS)},
            )
        if join.session_id != self.session_id:
            return self._refuse(
                c, ErrorCode.SESSION_NOT_FOUND, f"no session {join.session_id!r} here"
            )
        device = join.device
        now = self.clock.monotonic()
        if self._pin_guard.blocked(c.ip, now):
            return self._refuse(
                c, ErrorCode.RATE_LIMITED, "too many wrong PINs; wait a minute and try again"
            )
        unproven = self._identity_problem(c, join)
        if unproven is not None:
            return unproven
        if device.id in self._banned or c.ip in self._banned_ips:
            return self._refuse(c, ErrorCode.UNAUTHORIZED, "this device was removed by the host")
        existing = self._members.get(device.id)
        if (
            existing is not None
            and not existing.is_host
            and join.resume_token is not None
            and secrets.compare_digest(join.resume_token, existing.resume_token)
        ):
            return self._resume(c, existing, join)  # membership proven: no PIN asked again
        if self.pin is not None and not pin_matches(join.pin, self.pin):
            self._pin_guard.failed(c.ip, now)
            text = "this session needs a PIN" if join.pin is None else "wrong PIN"
            return self._refuse(c, ErrorCode.UNAUTHORIZED, text, {"pinRequired": True})
        taken_over: list[HostEffect] = []
        if existing is not None:
            if existing.is_host or existing.conn is not None or join.proof is None:
                return self._refuse(
                    c, ErrorCode.ALREADY_JOINED, f"{device.id} is already in the session"
                )
            # A held place, and a JOIN that proves its device's key but has no token: a
            # guest whose link fell before WELCOME reached it. It takes the place over as
            # a fresh join (the others see it leave and join), so nobody is locked out
            # until the hold runs out, and a guest that holds its token still resumes
            # without churn. An unproven id could be anyone's: it waits for the hold.
            taken_over = self._remove(existing, "disconnected")
        if len(self._members) >= cfg.max_members:
            return self._refuse(
                c,
                ErrorCode.SESSION_FULL,
                f"session is full ({len(self._members)} of {cfg.max_members} members)",
                {"maxMembers": cfg.max_members},
            )
        member = _Member(
            id=device.id,
            name=device.name,
            device_type=device.type,
            joined_at=self.clock.wall_ms(),
            ip=c.ip,
            conn=c.id,
            resume_token=secrets.token_urlsafe(16),
            last_seen=now,
            proven=join.proof is not None,
            audio=bool(join.audio),
        )
        self._members[member.id] = member
        c.member_id = member.id
        info = member.info()
        effects: list[HostEffect] = [*taken_over, *self._welcome(c, member)]
        others = self._joined_conns(exclude=c.id)
        if others:
            effects.append(
                Broadcast(others, MemberJoined(timestamp=self.clock.wall_ms(), member=info))
            )
        effects.append(MemberAdded(info, member.device_type, member.ip, member.audio))
        effects.append(Log("info", f"{member.name} joined from {c.address or 'unknown address'}"))
        return effects

    def _identity_problem(self, c: _Conn, join: Join) -> list[HostEffect] | None:
        """Refuse a JOIN whose id is not proven, unless the host admits unproven guests.

        Checked before bans and resume, so both apply to the proven key: nobody can take
        a proven device's place, be banned in its name or resume it without its key.
        """
        device = join.device
        proof = join.proof
        if proof is None:
            if not self.config.allow_unproven:
                return self._refuse(
                    c, ErrorCode.UNAUTHORIZED, "this host requires a device key (update the app)"
                )
            if is_key_id(device.id):
                return self._refuse(
                    c, ErrorCode.UNAUTHORIZED, "a key-derived id (k-...) needs its proof"
                )
            return None
        problem = (
            "no challenge was issued on this connection"
            if c.challenge is None
            else verify_join(
                proof.public_key,
                proof.signature,
                nonce=c.challenge,
                session_id=self.session_id,
                fingerprint=self.fingerprint,
                device_id=device.id,
            )
        )
        if problem is None:
            return None
        effects = self._refuse(c, ErrorCode.UNAUTHORIZED, "identity proof failed")
        effects.append(Log("warning", f"Identity proof for {device.id} failed: {problem}"))
        return effects

    def _hold_expired(self, member: _Member) -> bool:
        dropped = member.dropped_at
        return dropped is not None and (
            self.clock.monotonic() - dropped >= self.config.heartbeat_timeout
        )

    def _resume(self, c: _Conn, member: _Member, join: Join) -> list[HostEffect]:
        effects: list[HostEffect] = []
        if member.conn is not None and member.conn in self._conns:
            old = self._conns[member.conn]
            old.closing = True
            old.member_id = None
            effects.append(Close(old.id, CloseCode.NORMAL, "replaced by a resumed connection"))
        member.conn = c.id
        member.ip = c.ip
        member.dropped_at = None
        member.last_seen = self.clock.monotonic()
        member.name = join.device.name
        member.row = None
        member.audio = bool(join.audio)
        c.member_id = member.id
        self._set_status(member, "connected")
        effects += self._welcome(c, member)
        effects.append(member.changed())
        effects.append(Log("info", f"{member.name} resumed"))
        return effects

    def _welcome(self, c: _Conn, member: _Member) -> list[HostEffect]:
        now = self.clock.wall_ms()
        return [
            Send(
                c.id,
                Welcome(
                    timestamp=now,
                    client_id=member.id,
                    resume_token=member.resume_token,
                    session=self.session_info(),
                    heartbeat_interval=round(self.config.heartbeat_interval * 1000),
                    heartbeat_timeout=round(self.config.heartbeat_timeout * 1000),
                ),
            ),
            Send(c.id, MemberList(timestamp=now, members=self._snapshot())),
            *(Send(c.id, message) for message in self._now_playing),
            *([AudioWanted(c.id)] if member.audio else []),
        ]

    def _refuse(
        self, c: _Conn, code: ErrorCode, text: str, details: dict[str, object] | None = None
    ) -> list[HostEffect]:
        c.closing = True
        return [
            Send(c.id, self._error(code, text, details)),
            Close(c.id, CloseCode.JOIN_REFUSED, code.value),
            Log("warning", f"Refused a join from {c.address or 'unknown address'}: {text}"),
        ]

    # Joined members -------------------------------------------------------------

    def _on_member_message(self, c: _Conn, member: _Member, message: Message) -> list[HostEffect]:
        match message:
            case Heartbeat():
                return []
            case Ping(latency=latency):
                clock = message.sent_us is not None  # a guest that keeps the session clock
                pong = Pong(
                    timestamp=self.clock.wall_ms(),
                    ping_timestamp=message.timestamp,
                    received_at=self.clock.wall_ms(),
                    ping_sent_us=message.sent_us,
                    received_us=max(0, self._received_us) if clock else None,
                    sent_us=self.session_clock_us if clock else None,
                )
                effects: list[HostEffect] = [Send(c.id, pong)]
                reported = message.clock_uncertainty_us
                changed = False
                if reported is not None and uncertainty_changed(
                    member.clock_uncertainty_us, reported
                ):
                    member.clock_uncertainty_us = reported
                    changed = True
                if message.sync is not None and message.sync != member.sync:
                    member.sync = message.sync
                    changed = True
                if changed:
                    effects.append(member.changed())  # the host's table only: not broadcast
                if latency is not None and latency != member.latency:
                    member.latency = latency
                    member.row = None
                    self._pending.ids.add(member.id)
                    effects.append(member.changed())
                return effects
            case Leave(reason=reason):
                c.closing = True
                return [
                    Close(c.id, CloseCode.NORMAL, "left"),
                    *self._remove(member, "left", detail=reason),
                ]
            case Control(action=action, seconds=seconds):
                if not member.dj:
                    text = "Only a DJ can control playback; ask the host"
                    return [Send(c.id, self._error(ErrorCode.NOT_ALLOWED, text))]
                return [ControlRequested(member.id, member.name, action, seconds)]
            case Join():
                return [Send(c.id, self._error(ErrorCode.INVALID_MESSAGE, "already joined"))]
            case _:
                text = f"{type_name(message)} is sent by the host, not by a guest"
                return [Send(c.id, self._error(ErrorCode.INVALID_MESSAGE, text))]

    def _remove(
        self, member: _Member, reason: LeftReason, detail: str | None = None
    ) -> list[HostEffect]:
        self._members.pop(member.id, None)
        self._pending.ids.discard(member.id)
        self._pending.shown.discard(member.id)
        if member.conn is not None and member.conn in self._conns:
            self._conns[member.conn].member_id = None
        member.conn = None
        effects: list[HostEffect] = []
        others = self._joined_conns()
        if others:
            message = MemberLeft(timestamp=self.clock.wall_ms(), member_id=member.id, reason=reason)
            effects.append(Broadcast(others, message))
        effects.append(MemberRemoved(member.id, member.name, reason))
        suffix = f" ({detail})" if detail else ""
        effects.append(Log("info", f"{member.name} {LEFT_WORDS[reason]}{suffix}"))
        return effects

    def _rate_limited(self, c: _Conn) -> list[HostEffect]:
        c.closing = True
        effects: list[HostEffect] = [
            Send(c.id, self._error(ErrorCode.RATE_LIMITED, "too many messages; slow down")),
            Close(c.id, CloseCode.POLICY, "rate limit exceeded"),
            Log("warning", f"Rate limit: closed the connection from {c.address or 'unknown'}"),
        ]
        return effects

    def _set_status(self, member: _Member, status: ConnectionStatus) -> None:
        if member.status != status:
            member.status = status
            member.row = None
            self._pending.ids.add(member.id)

    def _snapshot(self) -> list[MemberInfo]:
        """Every member as it is now, for a (re)joining guest's MEMBER_LIST."""
        self._pending.shown |= self._pending.ids
        return self.members

    def _flush_updates(self, now: float) -> list[HostEffect]:
        pending = self._pending
        if not pending.ids or now - pending.last_sent < self.config.heartbeat_interval:
            return []
        changed: list[MemberInfo] = []
        for member_id in sorted(pending.ids):  # `shown` is drawn from `ids`
            member = self._members.get(member_id)
            if member is None:
                continue
            if (
                member.status != member.sent_status
                or latency_changed(member.sent_latency, member.latency)
                or member_id in pending.shown
            ):
                member.sent_status = member.status
                member.sent_latency = member.latency
                changed.append(member.info())
        pending.ids.clear()
        pending.shown.clear()
        if not changed:
            return []
        pending.last_sent = now
        conns = self._joined_conns()
        if not conns:
            return []
        return [Broadcast(conns, MemberUpdated(timestamp=self.clock.wall_ms(), members=changed))]

    # Playback -----------------------------------------------------------------------

    def announce(self, message: Track | Play | Pause | Seek) -> list[HostEffect]:
        """Tell every member about a new track or epoch; kept for those who join later."""
        if isinstance(message, Track):
            self._now_playing = [message]
        else:
            self._now_playing = [*self._now_playing[:1], message]
        conns = self._joined_conns()
        return [Broadcast(conns, message)] if conns else []

    def set_output(
        self, member_id: str, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> list[HostEffect]:
        """Change a member's volume or latency offset (it applies and remembers them)."""
        member = self._members.get(member_id)
        if member is None or member.conn is None:
            return [Log("warning", f"No connected member {member_id!r} to set the output of")]
        message = SetOutput(
            timestamp=self.clock.wall_ms(), volume=volume, latency_offset_ms=latency_offset_ms
        )
        return [Send(member.conn, message)]

    def audio_conns(self) -> tuple[ConnId, ...]:
        """The connections that get audio frames: joined members that asked for them."""
        return tuple(
            m.conn
            for m in self._members.values()
            if m.audio and m.conn is not None and not self._conns[m.conn].closing
        )

    def _joined_conns(self, exclude: ConnId | None = None) -> tuple[ConnId, ...]:
        # A connection names its member exactly while that member names it (`_admit`,
        # `_remove`, `disconnected`), so the connections alone tell, a lookup fewer each.
        return tuple(
            c.id
            for c in self._conns.values()
            if c.member_id is not None and not c.closing and c.id != exclude
        )

    def _error(self, code: ErrorCode, text: str, details: dict[str, object] | None = None) -> Error:
        return Error(
            timestamp=self.clock.wall_ms(), code=code, message=text[:1024], details=details
        )


def connection_ids(effects: Iterable[HostEffect]) -> set[ConnId]:
    """Every connection the effects address; handy in tests."""
    found: set[ConnId] = set()
    for effect in effects:
        if isinstance(effect, Send | Close):
            found.add(effect.conn)
        elif isinstance(effect, Broadcast):
            found.update(effect.conns)
    return found
