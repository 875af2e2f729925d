"""The guest's session rules, without I/O.

`GuestSession` is the whole guest side: asking the host who it is and deciding whether
to trust it (`LookUpHost`, then `host_answered` or `lookup_failed`; the policy is
`security.trust`), the connection state machine (DISCONNECTED -> CONNECTING ->
CONNECTED -> RECONNECTING -> FAILED), the resume token, the reconnect schedule, the
heartbeat schedule and the latency estimate. The adapter looks the host up, opens and
closes sockets when told to (`Connect`, `Disconnect`), feeds answers, frames and closes
back in, and calls `tick()` by `next_deadline()`.

Why one file past 400 lines: the phases share one state (a retry after a failed lookup
asks again, after a dropped link resumes; the heartbeat, the clock probes and the
silence deadline all read the link's state), so splitting them would spread one state
machine over modules. The parts that stand alone are beside it: its effects and inputs
(guest_effects.py), the trust policy (security/trust.py), the clock estimator
(clock_sync.py).
"""

from __future__ import annotations

import random
from typing import Literal

from loudsync_tui.config import GuestConfig
from loudsync_tui.core.clock import Clock
from loudsync_tui.core.clock_sync import ClockEstimator, ClockSample, ProbeSchedule
from loudsync_tui.core.effects import Log, LogLevel
from loudsync_tui.core.epoch import Epoch
from loudsync_tui.core.guest_effects import (
    ClockEstimated,
    Connect,
    ConnectionState,
    Disconnect,
    EndCode,
    Ended,
    EpochChanged,
    GuestEffect,
    HostFacts,
    LatencyMeasured,
    LookUpHost,
    MemberGone,
    MembersReplaced,
    MembersUpdated,
    OutputSet,
    PinHost,
    SecurityKnown,
    StateChanged,
    TrackAnnounced,
    Transmit,
    Welcomed,
)
from loudsync_tui.core.latency import uncertainty_changed
from loudsync_tui.protocol import (
    MAX_MEMBERS,
    PROTOCOL_VERSION,
    CloseCode,
    Control,
    DeviceInfo,
    Error,
    ErrorCode,
    Heartbeat,
    Join,
    JoinProof,
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
    SetOutput,
    SyncReport,
    Track,
    Welcome,
    decode,
    is_control_action,
    is_seek_seconds,
    should_reconnect,
    type_name,
)
from loudsync_tui.protocol_audio import MAGIC as AUDIO_MAGIC
from loudsync_tui.security.device_key import sign_join
from loudsync_tui.security.trust import Verdict, decide, host_label, with_overrides

__all__ = [
    "ClockEstimated",
    "Connect",
    "ConnectionState",
    "Disconnect",
    "EndCode",
    "Ended",
    "EpochChanged",
    "GuestEffect",
    "GuestSession",
    "HostFacts",
    "LatencyMeasured",
    "LookUpHost",
    "MemberGone",
    "MembersReplaced",
    "MembersUpdated",
    "OutputSet",
    "PinHost",
    "SecurityKnown",
    "StateChanged",
    "TrackAnnounced",
    "Transmit",
    "Welcomed",
]

REFUSALS: dict[ErrorCode, str] = {
    ErrorCode.SESSION_FULL: "the session is full",
    ErrorCode.SESSION_NOT_FOUND: "no such session at this address",
    ErrorCode.ALREADY_JOINED: "this device is already in the session",
    ErrorCode.UNAUTHORIZED: "the host does not let this device in",
    ErrorCode.VERSION_MISMATCH: "the host speaks another protocol version",
    ErrorCode.RATE_LIMITED: "too many attempts; wait a minute",
    ErrorCode.INVALID_MESSAGE: "the host did not understand the join",
}
"""Words for a refusal whose ERROR came without a text; codes are not for people."""
LATENCY_SMOOTHING = 0.3
"""Weight of a new round-trip sample in the moving average."""
IDLE_PROBE_HEARTBEATS = 2
"""While nothing plays, a probe (a PING and its follow-up) goes every second heartbeat
and a HEARTBEAT between: the follow-ups then cost no idle traffic over one PING each
heartbeat (benchmarks.idle)."""


class GuestSession:
    def __init__(
        self,
        config: GuestConfig,
        session_id: str | None,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.session_id = session_id or ""
        """The session to join: the given one, else the one the host names at lookup."""
        self.host: HostFacts | None = None
        """What the host said at lookup, once it is trusted."""
        self.clock = clock
        self.rng = rng or random.Random()
        self.state = ConnectionState.DISCONNECTED
        self.resume_token: str | None = None
        self.latency: float | None = None
        self.ended: Ended | None = None
        self.attempt = 0
        self.failure: str | None = None
        self._heartbeat_interval = 5.0
        self._heartbeat_timeout = 15.0
        self._last_received = 0.0
        self._next_heartbeat: float | None = None
        self._next_attempt: float | None = None
        self._welcome_deadline: float | None = None
        self._open = False
        self._pings: dict[int, float] = {}
        self._leaving = False
        self._member_ids: set[str] = set()
        self._max_members = MAX_MEMBERS
        self._overflow_logged = False
        self._tls = False
        self._fingerprint: str | None = None
        self.clock_estimator = ClockEstimator()
        """The session clock as this guest knows it, from the four timestamps of each PING."""
        self._probes = ProbeSchedule()
        self._setup_ping: int | None = None
        """The timestamp of the PING sent on WELCOME, whose round trip is not a sample."""
        self._leads: set[int] = set()
        """Probes whose PONG is answered at once by a follow-up PING (see `_on_pong`)."""
        self._received_us = 0
        self._told_uncertainty: float | None = None
        """The clock uncertainty this guest last reported to the host."""
        self.epoch: Epoch | None = None
        """The latest playback epoch the host announced."""
        self._sync: SyncReport | None = None
        self._unasked_audio_logged = False
        self.client_id: str | None = None
        """This member's id in the session, as the host named it in WELCOME."""
        self._dj = False

    @property
    def is_dj(self) -> bool:
        """Whether the host made this member a DJ (its CONTROL drives playback), as the
        member list says; the host decides, so `control()` sends whatever this says."""
        return self._dj

    # Commands -------------------------------------------------------------------

    def start(self) -> list[GuestEffect]:
        """Ask the host who it is; nothing is sent to it before it is trusted."""
        if self.state is not ConnectionState.DISCONNECTED or self.ended is not None:
            return []
        return self._look_up()

    def retry(self) -> list[GuestEffect]:
        """From FAILED only: a fresh round of attempts, resuming if the host still holds us
        (or the lookup again, when the host never answered it)."""
        if self.state is not ConnectionState.FAILED:
            return []
        self.attempt = 0
        self.failure = None
        self.ended = None
        if self.host is None:
            return self._look_up()
        return self._connect(ConnectionState.CONNECTING)

    # The host lookup and the trust decision ------------------------------------------

    def host_answered(self, facts: HostFacts) -> list[GuestEffect]:
        """The host said who it is: trust it (and connect), ask the user, or refuse."""
        if self.state is not ConnectionState.CONNECTING or self.host is not None or self.ended:
            return []
        cfg = self.config
        first = decide(
            host_label(facts.host_name, facts.session_name),
            facts.fingerprint,
            given=cfg.expected_fingerprint,
            advertised=cfg.advertised_fingerprint,
            pinned=facts.pinned,
            address=facts.address,
            pinned_at_address=facts.pinned_at_address,
        )
        decision = with_overrides(
            first,
            given=cfg.expected_fingerprint,
            trust_new=cfg.trust_new,
            replace_pin=cfg.replace_pin,
            pin=cfg.pin,
        )
        verdict, observed = decision.verdict, decision.fingerprint
        effects: list[GuestEffect] = []
        if verdict is Verdict.PLAINTEXT:
            warning = "This session is not encrypted: others on the network can read it."
            effects += [Log("warning", warning), SecurityKnown(encrypted=False, fingerprint=None)]
            observed = None
        elif verdict is not Verdict.TRUSTED or observed is None:
            changed = verdict is Verdict.MISMATCH
            # Only a fingerprint the user may accept is handed on: never an advertised or
            # given one that differs, which is refused outright.
            acceptable = verdict is Verdict.NEW or decision.replaceable
            level: LogLevel = "error" if changed else "warning"
            return self._end(
                decision.message,
                "untrusted",
                question=decision.message,
                fingerprint=observed if acceptable else None,
                changed=changed,
                level=level,
            )
        else:
            if first.verdict is Verdict.MISMATCH:
                replaced = f"Replaced the pinned fingerprint for {facts.address}"
                effects.append(Log("warning", replaced))
            effects += [
                PinHost(facts.host_id, observed, facts.address),
                SecurityKnown(encrypted=True, fingerprint=observed),
            ]
        self.host = facts
        self._tls, self._fingerprint = facts.tls, observed
        if self.session_id and self.session_id != facts.session_id:
            other = f"{facts.address} hosts {facts.session_id!r}, not {self.session_id!r}"
            effects.append(Log("warning", other))
        self.session_id = self.session_id or facts.session_id
        return [*effects, self._connection()]

    def lookup_failed(self, error: str) -> list[GuestEffect]:
        """The host could not be asked (nothing listening, not a LOUDSYNC host, timed out)."""
        if self.state is not ConnectionState.CONNECTING or self.host is not None or self.ended:
            return []
        return self._lost(None, error)

    def control(self, action: str, seconds: float = 0.0) -> list[GuestEffect]:
        """Ask the host to play, pause, toggle, seek (by `seconds`, relative; the other
        actions ignore it), or skip to the next or previous track. Sent only while
        connected; the host carries it out for a DJ and answers anyone else with ERROR
        NOT_ALLOWED (logged). A control the host could only refuse as malformed (an unknown
        action, a seek that is not finite or beyond an hour) is logged here, not sent."""
        if self.state is not ConnectionState.CONNECTED or not self._open:
            return []
        if not is_control_action(action):
            return [Log("warning", f"Unknown playback control {action!r}; nothing sent")]
        now = self.clock.wall_ms()
        if action != "seek":  # `seconds` is the seek's alone: the others leave it out
            return [Transmit(Control(timestamp=now, action=action))]
        if not is_seek_seconds(seconds):
            return [Log("warning", f"Cannot seek by {seconds!r} s (at most an hour either way)")]
        return [Transmit(Control(timestamp=now, action=action, seconds=float(seconds)))]

    def leave(self, reason: str | None = None) -> list[GuestEffect]:
        """Leave for good; `reason`, when given, is shown to the others after "left"."""
        if self.ended is not None:
            return []
        self._leaving = True
        effects: list[GuestEffect] = []
        if self._open:
            if self.state is ConnectionState.CONNECTED:
                effects.append(Transmit(Leave(timestamp=self.clock.wall_ms(), reason=reason)))
            effects.append(Disconnect(CloseCode.NORMAL, "left"))
        return effects + self._end("You left the session", "left")

    # Socket events ----------------------------------------------------------------

    def opened(
        self, *, challenge: str | None = None, fingerprint: str | None = None
    ) -> list[GuestEffect]:
        """The WebSocket handshake completed; ask to join (resuming if we can).

        `challenge` is the nonce from the host's handshake response and `fingerprint` the
        host certificate's (None over plain ws://). With a device key and a challenge the
        JOIN proves the id; a host that sent no challenge (Phase 1) gets a plain JOIN.
        """
        self._open = True
        self._welcome_deadline = self.clock.monotonic() + self.config.connect_timeout
        proof = None
        if self.config.device_key is not None and challenge is not None:
            signed = sign_join(
                self.config.device_key,
                challenge,
                self.session_id,
                fingerprint,
                self.config.device_id,
            )
            proof = JoinProof(public_key=signed.public_key, signature=signed.signature)
        join = Join(
            timestamp=self.clock.wall_ms(),
            session_id=self.session_id,
            protocol_version=PROTOCOL_VERSION,
            device=DeviceInfo(self.config.device_id, self.config.name, self.config.device_type),
            resume_token=self.resume_token,
            pin=self.config.pin,
            proof=proof,
            audio=True if self.config.audio else None,  # absent: no frames, as in Phase 1
        )
        return [Transmit(join)]

    def connect_failed(self, error: str) -> list[GuestEffect]:
        """The connection could not be opened (refused, unreachable, timed out)."""
        self._open = False
        return self._lost(None, error)

    def closed(self, code: int | None, reason: str = "") -> list[GuestEffect]:
        """The connection closed; `code` is None when no close frame came (link lost)."""
        was_open, self._open = self._open, False
        if not was_open or self.ended is not None:
            return []
        if self._leaving:
            return []
        if not should_reconnect(code):
            return self._end_for_close(code, reason)
        return self._lost(code, f"connection lost ({_describe_close(code, reason)})")

    def received(self, data: str | bytes, at_us: int | None = None) -> list[GuestEffect]:
        """A frame from the host; `at_us`: the local monotonic µs it was read (the adapter
        stamps it as close to the socket as it can; default: now)."""
        self._last_received = self.clock.monotonic()
        self._received_us = self.clock.monotonic_us() if at_us is None else at_us
        if isinstance(data, bytes) and data[:2] == AUDIO_MAGIC:
            if self._unasked_audio_logged:  # audio this guest has no speakers for
                return []
            self._unasked_audio_logged = True
            return [Log("warning", "The host sends audio this member did not ask for; ignored")]
        try:
            message = decode(data)
        except ProtocolError as exc:
            return [Log("warning", f"Ignored a bad message from the host: {exc.message}")]
        return self._on_message(message)

    def tick(self) -> list[GuestEffect]:
        now = self.clock.monotonic()
        effects: list[GuestEffect] = []
        if (
            self.state is ConnectionState.RECONNECTING
            and not self._open
            and self._next_attempt is not None
            and now >= self._next_attempt
        ):
            self._next_attempt = None
            effects.append(self._connection())
        if self._welcome_deadline is not None and now >= self._welcome_deadline and self._open:
            self._welcome_deadline = None
            self._open = False
            effects.append(Disconnect(CloseCode.NORMAL, "no WELCOME in time"))
            effects += self._lost(None, "the host did not answer the JOIN in time")
        if self.state is ConnectionState.CONNECTED and self._open:
            if now - self._last_received >= self._heartbeat_timeout:
                self._open = False
                effects.append(Disconnect(CloseCode.HEARTBEAT_TIMEOUT, "host silent"))
                silent = f"the host was silent for {self._heartbeat_timeout:g} s"
                return effects + self._lost(None, silent)
            if now >= self._probes.next_due(now):
                effects += self._probe(now)  # also a heartbeat: it moves the next one on
            if self._next_heartbeat is not None and now >= self._next_heartbeat:
                effects += self._heartbeat(now)
        return effects

    def next_deadline(self) -> float | None:
        """When `tick()` next has something to do (monotonic seconds), or None."""
        times = [
            t
            for t in (
                self._next_attempt if self.state is ConnectionState.RECONNECTING else None,
                self._welcome_deadline,
                self._next_heartbeat if self.state is ConnectionState.CONNECTED else None,
                self._probes.next_due(self.clock.monotonic())
                if self.state is ConnectionState.CONNECTED and self._open
                else None,
                self._last_received + self._heartbeat_timeout
                if self.state is ConnectionState.CONNECTED and self._open
                else None,
            )
            if t is not None
        ]
        return min(times) if times else None

    # Internals --------------------------------------------------------------------

    def _on_message(self, message: Message) -> list[GuestEffect]:
        now = self.clock.monotonic()
        match message:
            case Welcome():
                resumed = (
                    self.resume_token is not None
                    and self.state
                    in (
                        ConnectionState.RECONNECTING,
                        ConnectionState.CONNECTING,
                    )
                    and self.resume_token == message.resume_token
                )
                self.resume_token = message.resume_token
                self.client_id = message.client_id
                self._heartbeat_interval = message.heartbeat_interval / 1000
                self._heartbeat_timeout = message.heartbeat_timeout / 1000
                self._welcome_deadline = None
                self._max_members = min(message.session.max_members, MAX_MEMBERS)
                self.attempt = 0
                self.state = ConnectionState.CONNECTED
                self._pings.clear()
                self._leads.clear()
                if not resumed:  # another session, another clock, a host that knows nothing
                    self.clock_estimator.reset()
                    self._told_uncertainty = None
                    self.epoch = None
                    self._dj = False  # a role belongs to the member the host held
                self._probes = ProbeSchedule(
                    idle_interval=IDLE_PROBE_HEARTBEATS * self._heartbeat_interval,
                    burst=self.config.clock_burst,
                )
                self._probes.playing = self.epoch is not None and self.epoch.playing
                self._probes.connected(now)
                first_ping = self._probe(now)
                self._setup_ping = next(iter(self._pings))
                return [
                    StateChanged(ConnectionState.CONNECTED),
                    Welcomed(message, resumed),
                    *first_ping,
                ]
            case MemberList(members=members):
                self._member_ids = set()
                kept = self._admit_members(members)
                mine = next((m for m in kept if m.id == self.client_id), None)
                role = self._role(mine is not None and mine.dj)
                return [
                    MembersReplaced(kept),
                    *self._overflow_log(len(members) - len(kept)),
                    *role,
                ]
            case MemberJoined(member=member):
                kept = self._admit_members([member])
                return [MembersUpdated(kept)] if kept else self._overflow_log(1)
            case MemberUpdated(members=members):
                kept = self._admit_members(members)
                effects: list[GuestEffect] = [MembersUpdated(kept)] if kept else []
                effects += self._overflow_log(len(members) - len(kept))
                for m in kept:
                    if m.id == self.client_id:
                        effects += self._role(m.dj)
                return effects
            case MemberLeft(member_id=member_id, reason=reason):
                if member_id not in self._member_ids:
                    return []
                self._member_ids.discard(member_id)
                return [MemberGone(member_id, reason)]
            case Pong():
                return self._on_pong(message, now)
            case Track(by=by):
                return [TrackAnnounced(message, by)]
            case Play() | Pause() | Seek():
                return self._on_epoch(message)
            case SetOutput(volume=volume, latency_offset_ms=offset):
                return [OutputSet(volume, offset)]
            case Kicked(reason=reason):
                return self._end(reason or "You were removed by the host", "kicked")
            case SessionClosed(reason=reason):
                # The host's own words ("The host ended the session") say it already.
                return self._end(reason or "The host ended the session", "closed")
            case Error(code=ErrorCode.NOT_ALLOWED, message=text):
                # A refused CONTROL: nothing changed, the membership goes on. Never a join
                # refusal, whatever the state.
                return [Log("warning", f"The host refused: {text or 'not allowed'}")]
            case Error(code=code, message=text, details=details):
                if self.state is not ConnectionState.CONNECTED:
                    needs_pin = bool(details and details.get("pinRequired"))
                    return [
                        Disconnect(CloseCode.NORMAL, "join refused"),
                        *self._end(
                            f"Join refused: {text or REFUSALS.get(code, 'no reason given')}",
                            "pin" if needs_pin else "refused",
                        ),
                    ]
                return [Log("warning", f"The host reported a problem: {text or code}")]
            case _:
                return [Log("warning", f"Ignored {type_name(message)}: only guests send it")]

    def _on_epoch(self, message: Play | Pause | Seek) -> list[GuestEffect]:
        playing = message.playing if isinstance(message, Seek) else isinstance(message, Play)
        kind: Literal["play", "pause", "seek"] = (
            "seek" if isinstance(message, Seek) else "play" if playing else "pause"
        )
        epoch = Epoch(message.epoch, message.track_id, playing, message.at_us, message.sample)
        if self.epoch is not None and epoch.number <= self.epoch.number:
            return []  # a replay of what is known (a resume sends the state again)
        self.epoch = epoch
        self._probes.playing = playing  # the skew is tracked closely while music plays
        return [EpochChanged(epoch, kind, message.by)]

    def _role(self, dj: bool) -> list[GuestEffect]:
        """This member's DJ role as the member list now says it; a change is logged."""
        if dj == self._dj:
            return []
        self._dj = dj
        if dj:
            return [Log("info", "The host made you a DJ: you can play, pause, seek and skip")]
        return [Log("info", "You are no longer a DJ")]

    def report_sync(self, report: SyncReport | None) -> None:
        """How this guest's output follows the timeline; the next PING carries it."""
        self._sync = report

    def _admit_members(self, members: list[MemberInfo]) -> list[MemberInfo]:
        """The members this guest will hold: known ones, and new ones while there is room.

        A host cannot make a guest hold more than the session's advertised maximum (nor
        more than MAX_MEMBERS whatever it advertises): each member costs memory and
        redraw time, and 30,000 of them froze a guest for 38 s.
        """
        kept: list[MemberInfo] = []
        for member in members:
            if member.id not in self._member_ids:
                if len(self._member_ids) >= self._max_members:
                    continue
                self._member_ids.add(member.id)
            kept.append(member)
        return kept

    def _overflow_log(self, refused: int) -> list[GuestEffect]:
        if refused <= 0 or self._overflow_logged:
            return []
        self._overflow_logged = True
        return [
            Log(
                "warning",
                f"The host sent more members than the session's maximum of "
                f"{self._max_members}; ignored the extra ones",
            )
        ]

    def _heartbeat(self, now: float) -> list[GuestEffect]:
        """A sign of life when no probe went out for a heartbeat interval."""
        self._next_heartbeat = now + self._heartbeat_interval
        return [Transmit(Heartbeat(timestamp=self.clock.wall_ms()))]

    def _probe(self, now: float, *, follow_up: bool = False) -> list[GuestEffect]:
        """One PING, remembered by its timestamp so its PONG gives a round trip."""
        wall = self.clock.wall_ms()
        if follow_up:
            while wall in self._pings:  # another PING in flight holds this millisecond
                wall += 1
        elif wall in self._pings:  # one PING per millisecond: its PONG is matched by it
            return []
        self._pings[wall] = now
        if len(self._pings) > 40:  # a burst's worth in flight, no more
            self._leads.discard(self._pings.pop(next(iter(self._pings))))
        if not follow_up:
            self._probes.sent(now)
            self._next_heartbeat = now + self._heartbeat_interval  # any message is one
            if self.config.clock_burst > 0:
                self._leads.add(wall)
        latency = None if self.latency is None else round(self.latency, 1)
        estimate = self.clock_estimator.estimate()
        uncertainty = None if estimate is None else round(estimate.uncertainty_us, 1)
        if uncertainty is not None and uncertainty_changed(self._told_uncertainty, uncertainty):
            self._told_uncertainty = uncertainty
        else:
            uncertainty = None  # the host has it: 28 bytes saved in every idle PING
        ping = Ping(
            timestamp=wall,
            # The host heard the latency and the sync report in the lead a moment ago.
            latency=None if follow_up else latency,
            sent_us=self.clock.monotonic_us(),
            clock_uncertainty_us=uncertainty,
            sync=None if follow_up else self._sync,
        )
        return [Transmit(ping)]

    def _on_pong(self, pong: Pong, now: float) -> list[GuestEffect]:
        sent = self._pings.pop(pong.ping_timestamp, None)
        if sent is None:
            return []
        lead = pong.ping_timestamp in self._leads
        self._leads.discard(pong.ping_timestamp)
        if pong.ping_timestamp == self._setup_ping:
            # The PING sent with the JOIN's answer waits on everything a new connection
            # sets up at both ends (98 ms measured where the link takes 2): it is no
            # sample. A second probe, sent now the link is settled, gives the first one.
            self._setup_ping = None
            return self._probe(now, follow_up=True)
        effects = self._clock_sample(pong) + self._latency_sample(pong, now, sent)
        if lead and pong.sent_us is not None:
            # Sent the moment this PONG arrives, the follow-up finds both ends awake, so
            # its two legs take equally long. A probe after a quiet spell does not: the
            # host wakes from idle to read it (on loopback 370 µs up against 145 down,
            # a +112 µs bias), while the guest, which has just sent, reads the PONG at
            # once. The estimator's round-trip weights then favour the follow-ups.
            effects += self._probe(now, follow_up=True)
        return effects

    def _clock_sample(self, pong: Pong) -> list[GuestEffect]:
        """The four timestamps, when the host sent its two (a Phase 1 host does not)."""
        t1, t2, t3 = pong.ping_sent_us, pong.received_us, pong.sent_us
        if t1 is None or t2 is None or t3 is None:
            return []
        if not self.clock_estimator.add(ClockSample(t1, t2, t3, self._received_us)):
            return []
        estimate = self.clock_estimator.estimate()
        return [] if estimate is None else [ClockEstimated(estimate)]

    def _latency_sample(self, pong: Pong, now: float, sent: float) -> list[GuestEffect]:
        host_hold_ms = max(0, pong.timestamp - pong.received_at)
        sample = max(0.0, (now - sent) * 1000 - host_hold_ms)
        if self.latency is None:
            self.latency = sample
        else:
            self.latency += LATENCY_SMOOTHING * (sample - self.latency)
        return [LatencyMeasured(self.latency)]

    def _look_up(self) -> list[GuestEffect]:
        self.state = ConnectionState.CONNECTING
        return [
            StateChanged(ConnectionState.CONNECTING, self.attempt, self.config.reconnect_attempts),
            LookUpHost(),
        ]

    def _connection(self) -> Connect:
        return Connect(self._tls, self._fingerprint)

    def _connect(self, state: ConnectionState) -> list[GuestEffect]:
        self.state = state
        return [
            StateChanged(state, self.attempt, self.config.reconnect_attempts),
            self._connection(),
        ]

    def _lost(self, code: int | None, why: str) -> list[GuestEffect]:
        """A connection attempt failed or an established link dropped abnormally."""
        if self.ended is not None or self._leaving:
            return []
        self._next_heartbeat = None
        self._welcome_deadline = None
        effects: list[GuestEffect] = [Log("warning", why[:1].upper() + why[1:])]
        if self.latency is not None:  # a figure from a link that is gone says nothing now
            self.latency = None
            effects.append(LatencyMeasured(None))
        if self.resume_token is None or self.attempt >= self.config.reconnect_attempts:
            self.state = ConnectionState.FAILED
            self.failure = why
            self._next_attempt = None
            effects.append(StateChanged(ConnectionState.FAILED, self.attempt))
            return effects
        self.attempt += 1
        jitter = self.config.reconnect_jitter
        delay = self.config.reconnect_delay * self.rng.uniform(1 - jitter, 1 + jitter)
        self._next_attempt = self.clock.monotonic() + delay
        self.state = ConnectionState.RECONNECTING
        effects.append(
            StateChanged(
                ConnectionState.RECONNECTING,
                self.attempt,
                self.config.reconnect_attempts,
                self._next_attempt,
            )
        )
        del code
        return effects

    def _end_for_close(self, code: int | None, reason: str) -> list[GuestEffect]:
        if code == CloseCode.KICKED:
            return self._end("You were removed by the host", "kicked")
        if code == CloseCode.GOING_AWAY:
            return self._end("The session was closed", "closed")
        if code == CloseCode.JOIN_REFUSED:
            return self._end(f"Join refused ({reason or 'no reason given'})", "refused")
        return self._end(f"The host closed the connection ({reason or 'no reason'})", "closed")

    def _end(
        self,
        reason: str,
        code: EndCode,
        *,
        question: str | None = None,
        fingerprint: str | None = None,
        changed: bool = False,
        level: LogLevel | None = None,
    ) -> list[GuestEffect]:
        if self.ended is not None:
            return []
        level = level or ("info" if code == "left" else "warning")
        self.ended = Ended(reason, code, question, fingerprint, changed, level)
        self.state = ConnectionState.DISCONNECTED
        self._next_heartbeat = None
        self._next_attempt = None
        self._welcome_deadline = None
        return [StateChanged(ConnectionState.DISCONNECTED), self.ended]


def _describe_close(code: int | None, reason: str) -> str:
    if code is None:
        return "no close frame"
    return f"code {code}{', ' + reason if reason else ''}"
