"""Joining, put together: `GuestSession` driven over a real WebSocket, feeding the store.

One task owns the core. Everything that happens (a frame, a close, a connection
opened or refused, a command from the UI, a deadline) becomes an input on one queue,
so the core sees one thing at a time in order. The UI reaches this only through the
app, which holds it.

Why past 400 lines: it carries out every effect of the guest core (lookup, trust pins,
sockets, store changes in bursts), and each is a few lines; split, they would all reach
into the same loop and queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from loudsync_tui.audio import remembered
from loudsync_tui.audio.player import Player
from loudsync_tui.audio.speakers import open_speakers
from loudsync_tui.config import GuestConfig, OutputConfig, OutputSettings
from loudsync_tui.core.clock import Clock, SystemClock
from loudsync_tui.core.effects import LEFT_WORDS, Log
from loudsync_tui.core.guest import GuestSession
from loudsync_tui.core.guest_effects import (
    ClockEstimated,
    Connect,
    ConnectionState,
    Disconnect,
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
from loudsync_tui.net.arrivals import StampedClientConnection, stamper
from loudsync_tui.net.session_lookup import (
    AddressError,
    HostAddress,
    SessionLookupError,
    ask_host,
    parse_address,
)
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.protocol import Message, Ping, encode
from loudsync_tui.security.certificate import (
    client_context,
    peer_fingerprint,
)
from loudsync_tui.security.device_key import CHALLENGE_HEADER
from loudsync_tui.security.trust import KnownHosts
from loudsync_tui.store import AppStore, Member, member_from_info
from loudsync_tui.store.state import NowPlaying

log = logging.getLogger(__name__)

BURST_LIMIT = 1000
"""Inputs handled back to back before the loop yields; bounds how long one burst holds it."""
SYNC_REPORT_PERIOD = 1.0
"""Seconds between readings of the speakers' sync figures (store, next PING)."""


@dataclass(frozen=True, slots=True)
class _Opened:
    ws: ClientConnection
    generation: int
    challenge: str | None = None
    """The host's nonce from the handshake response; None from a Phase 1 host."""
    fingerprint: str | None = None
    """The certificate this connection presented (checked against the verified one)."""


@dataclass(frozen=True, slots=True)
class _Answered:
    facts: HostFacts
    generation: int


@dataclass(frozen=True, slots=True)
class _LookupFailed:
    error: str
    generation: int


@dataclass(frozen=True, slots=True)
class _ConnectFailed:
    error: str
    generation: int


@dataclass(frozen=True, slots=True)
class _Frame:
    data: str | bytes
    generation: int
    at_us: int
    """The local monotonic µs the frame came off the socket: a PONG's t4."""


@dataclass(frozen=True, slots=True)
class _Closed:
    code: int | None
    reason: str
    generation: int


@dataclass(frozen=True, slots=True)
class _Command:
    name: str
    action: str = ""
    seconds: float = 0.0


_Input = _Answered | _LookupFailed | _Opened | _ConnectFailed | _Frame | _Closed | _Command


class GuestService:
    def __init__(
        self,
        config: GuestConfig,
        store: AppStore,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        player: Player | None = None,
        output: OutputConfig | None = None,
        remember_in: Path | None = None,
    ) -> None:
        """`output`: open these speakers before joining (the app), unless a `player` is
        given; `remember_in`: the config dir, where a latency offset set here is kept
        for the host it was set for."""
        self.config = config
        self.store = store
        self.player = player
        self._output = output if player is None else None
        self._remember_in = remember_in
        self._host_id: str | None = None
        self._opened_player = False
        """This member's speakers; None for a remote control (no audio asked for)."""
        self._next_report = 0.0
        self.clock = clock or SystemClock()
        self._rng = rng
        self.core: GuestSession | None = None
        self._inputs: asyncio.Queue[_Input] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._generation = 0
        # The runner and its socket tasks; a socket closing under a send or a close is expected.
        self._tasks = TaskOwner("guest service", expected=(ConnectionClosed, OSError))
        self._runner: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self.end: Ended | None = None
        self._known: KnownHosts | None = None
        self._told_problem = False
        self._draft: dict[str, Member] | None = None

    def start(self) -> None:
        """Begin joining; returns at once. Progress shows in the store."""
        if self._runner is None:
            self.store.guest_joining(self.config.address)
            self._runner = self._tasks.spawn(self._run(), name="guest")

    # Commands from the app ------------------------------------------------------

    def leave(self) -> None:
        self._inputs.put_nowait(_Command("leave"))

    def retry(self) -> None:
        self._inputs.put_nowait(_Command("retry"))

    def control(self, action: str, seconds: float = 0.0) -> None:
        """A DJ's play, pause, seek, next, prev (the host refuses anyone else's)."""
        self._inputs.put_nowait(_Command("control", action, seconds))

    def set_local_output(
        self, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        """This machine's own volume or latency offset (kept for the host it was set for)."""
        if self.player is None:
            return
        self.player.set_output(volume=volume, latency_offset_ms=latency_offset_ms)
        self.store.playback_sync(self.player.report())
        directory = self._remember_in
        if directory is None:
            return
        if volume is not None:  # the speakers' volume, whichever host plays
            kept = remembered.load(directory)
            remembered.save(directory, OutputSettings(volume, kept.latency_offset_ms))
        if latency_offset_ms is not None and self._host_id is not None:
            remembered.save_host_offset(directory, self._host_id, latency_offset_ms)

    async def aclose(self) -> None:
        """Leave (sending LEAVE when connected) and wait until everything is closed."""
        if self._runner is None:
            return
        if not self._runner.done():
            self.leave()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._tasks.aclose()

    async def wait_ended(self) -> Ended:
        await self._ended.wait()
        assert self.end is not None
        return self.end

    # The loop -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            try:
                self.address = parse_address(self.config.address)
            except AddressError as exc:
                self._finish(Ended(str(exc), "refused"))
                return
            if self._output is not None:
                self.player = await open_speakers(self._output, self.store)
                self._opened_player = self.player is not None
                self.config = replace(self.config, audio=self.player is not None)
            known = KnownHosts(Path(self.config.trust_dir)) if self.config.trust_dir else None
            self._known = known
            core = self.core = GuestSession(
                self.config, self.config.session_id, self.clock, self._rng
            )
            self._apply(core.start())
            while core.ended is None:
                deadline = core.next_deadline()
                if self.player is not None:
                    deadline = min(deadline or self._next_report, self._next_report)
                timeout = None if deadline is None else max(0.0, deadline - self.clock.monotonic())
                try:
                    # timeout(), not wait_for(): no task per input (50 audio frames a second)
                    async with asyncio.timeout(timeout):
                        item = await self._inputs.get()
                except TimeoutError:
                    self._report_sync(core)
                    self._apply(core.tick())
                    self._commit_members()
                    continue
                self._apply(self._feed(core, item))
                self._drain(core)
                self._commit_members()
        except Exception as exc:  # never let a bug leave the UI waiting forever
            log.exception("guest connection failed")
            self._finish(Ended(f"Internal error: {exc}", "failed"))
        finally:
            await self._shutdown()

    def _report_sync(self, core: GuestSession) -> None:
        now = self.clock.monotonic()
        if self.player is None or now < self._next_report:
            return
        self._next_report = now + SYNC_REPORT_PERIOD
        report = self.player.report()
        core.report_sync(report)
        self.store.playback_sync(report)
        if self.player.problem is not None and not self._told_problem:
            self._told_problem = True
            self.store.log_event(f"Audio frames skipped: {self.player.problem}", "warning")

    def _drain(self, core: GuestSession) -> None:
        """Feed what has already arrived, so a burst of frames ends in one store change."""
        for _ in range(BURST_LIMIT):
            if core.ended is not None:
                return
            try:
                item = self._inputs.get_nowait()
            except asyncio.QueueEmpty:
                return
            self._apply(self._feed(core, item))

    def _members_draft(self) -> dict[str, Member]:
        """The member map being changed by the current burst, copied from the store once."""
        if self._draft is None:
            guest = self.store.get().guest
            self._draft = dict(guest.members) if guest is not None else {}
        return self._draft

    def _commit_members(self) -> None:
        if self._draft is not None:
            draft, self._draft = self._draft, None
            self.store.guest_members_set(draft.values())

    def _feed(self, core: GuestSession, item: _Input) -> list[GuestEffect]:
        if isinstance(item, _Command):
            if item.name == "control":
                return core.control(item.action, item.seconds)
            return core.leave() if item.name == "leave" else core.retry()
        if item.generation != self._generation:
            if isinstance(item, _Opened):  # a connection we gave up on meanwhile
                self._spawn(item.ws.close())
            return []
        if isinstance(item, _Answered):
            return core.host_answered(item.facts)
        if isinstance(item, _LookupFailed):
            return core.lookup_failed(item.error)
        if isinstance(item, _Opened):
            self._ws = item.ws
            self._spawn(self._read(item.ws, item.generation))
            return core.opened(challenge=item.challenge, fingerprint=item.fingerprint)
        if isinstance(item, _ConnectFailed):
            return core.connect_failed(item.error)
        if isinstance(item, _Frame):
            if isinstance(item.data, bytes) and self.player is not None:
                self.player.frame(item.data)  # audio: in order with the epochs, not the core's
                return []
            return core.received(item.data, item.at_us)
        self._ws = None
        return core.closed(item.code, item.reason)

    def _apply(self, effects: list[GuestEffect]) -> None:
        store = self.store
        for effect in effects:
            match effect:
                case Transmit(message=message):
                    if self._ws is not None:
                        self._spawn(self._send(self._ws, message))
                case LookUpHost():
                    self._generation += 1
                    self._spawn(self._look_up(self._generation))
                case PinHost(host_id=host_id, fingerprint=fingerprint, address=address):
                    if self._known is not None:
                        self._known.pin(host_id, fingerprint, address)
                case SecurityKnown(encrypted=encrypted, fingerprint=fingerprint):
                    store.guest_security(encrypted=encrypted, fingerprint=fingerprint)
                case Connect(tls=tls, fingerprint=fingerprint):
                    self._generation += 1
                    self._spawn(self._connect(self._generation, tls, fingerprint))
                case Disconnect(code=code, reason=reason):
                    ws, self._ws = self._ws, None
                    self._generation += 1
                    if ws is not None:
                        self._spawn(ws.close(code, reason))
                case StateChanged():
                    store.guest_connection(
                        effect.state,
                        attempt=effect.attempt,
                        max_attempts=effect.max_attempts,
                        next_attempt_at=effect.next_attempt_at,
                    )
                    if effect.state is ConnectionState.FAILED and self.core is not None:
                        store.guest_ended(_failure_text(self.core), "failed")
                case Welcomed(welcome=welcome, resumed=resumed):
                    self._commit_members()  # the welcome starts from what came before it
                    session = welcome.session
                    store.guest_welcomed(
                        client_id=welcome.client_id,
                        session_id=session.id,
                        session_name=session.name,
                        host_name=session.host_name,
                        max_members=session.max_members,
                    )
                    verb = "Resumed" if resumed else "Joined"
                    store.log_event(f"{verb} {session.name!r} hosted by {session.host_name}")
                    self._host_id = session.host_id
                    self._recall_offset(session.host_id)
                case MembersReplaced(members=members):
                    draft = self._members_draft()
                    draft.clear()
                    draft.update((m.id, member_from_info(m)) for m in members)
                case MembersUpdated(members=members):
                    draft = self._members_draft()
                    for m in members:
                        if m.id not in draft:
                            store.log_event(f"{m.name} joined")
                        draft[m.id] = member_from_info(m)
                case MemberGone(member_id=member_id, reason=reason):
                    gone = self._members_draft().pop(member_id, None)
                    store.log_event(f"{gone.name if gone else member_id} {LEFT_WORDS[reason]}")
                case LatencyMeasured(latency=latency):
                    store.guest_latency(latency)
                case ClockEstimated(estimate=estimate):
                    store.guest_clock(estimate)
                    if self.player is not None:
                        self.player.set_clock(estimate)
                case TrackAnnounced(track=track, by=by):
                    store.playback_track(NowPlaying.of(track))
                    if by:
                        store.log_event(f"{by} skipped to {track.title!r}")
                case OutputSet(volume=volume, latency_offset_ms=offset):
                    if self.player is not None:
                        self.player.set_output(volume=volume, latency_offset_ms=offset)
                        store.log_event(_output_words(volume, offset))
                case EpochChanged(epoch=epoch, kind=kind, by=by):
                    store.playback_epoch(epoch)
                    if by and (kind != "seek" or epoch.k0):  # a skip was said with its TRACK
                        store.log_event(f"{by} {DJ_WORDS[kind]}")
                    if self.player is not None:
                        self.player.set_epoch(epoch)
                case Log(level=level, text=text):
                    store.log_event(text, level)
                case Ended():
                    self._finish(effect)

    def _finish(self, end: Ended) -> None:
        """End the membership and log why, once (the reason is the log line)."""
        if self.end is not None:
            return
        self._commit_members()
        self.end = end
        if end.fingerprint is not None:
            self.store.guest_security(encrypted=True, fingerprint=end.fingerprint)
        self.store.guest_ended(end.reason, end.code, question=end.question, changed=end.changed)
        self.store.log_event(end.reason, end.level)
        self._ended.set()

    # Socket tasks ---------------------------------------------------------------

    async def _look_up(self, generation: int) -> None:
        """GET /session, then this guest's pins for what answered: the trust decision's facts."""
        cfg = self.config
        try:
            answer = await ask_host(self.address, cfg.tls, cfg.connect_timeout)
        except SessionLookupError as exc:
            self._inputs.put_nowait(_LookupFailed(str(exc), generation))
            return
        address = self.address.netloc
        known = self._known
        facts = HostFacts(
            session_id=answer.session_id,
            host_id=answer.host_id,
            session_name=answer.session_name,
            host_name=answer.host_name,
            address=address,
            tls=answer.tls,
            fingerprint=answer.fingerprint,
            pinned=known.get(answer.host_id) if known else None,
            pinned_at_address=known.at_address(address) if known else None,
        )
        self._inputs.put_nowait(_Answered(facts, generation))

    async def _connect(self, generation: int, tls: bool, fingerprint: str | None) -> None:
        cfg = self.config
        try:
            ws = await connect(
                self.address.ws_url(tls),
                ssl=client_context() if tls else None,
                open_timeout=cfg.connect_timeout,
                max_size=cfg.max_frame_size,
                ping_interval=None,  # the protocol's own PING does this job
                close_timeout=2.0,
                create_connection=StampedClientConnection,  # a PONG's t4 as it is read
            )
        except TimeoutError:
            self._inputs.put_nowait(_ConnectFailed("timed out", generation))
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            self._inputs.put_nowait(_ConnectFailed(_describe(exc, self.address), generation))
        else:
            observed = None
            if tls:
                observed = peer_fingerprint(ws.transport.get_extra_info("ssl_object"))
                if observed != fingerprint:
                    await ws.close()
                    self._inputs.put_nowait(
                        _ConnectFailed(
                            "the host's certificate changed since the join was verified", generation
                        )
                    )
                    return
            response = ws.response
            challenge = None if response is None else response.headers.get(CHALLENGE_HEADER)
            self._inputs.put_nowait(_Opened(ws, generation, challenge, observed))

    async def _read(self, ws: ClientConnection, generation: int) -> None:
        stamp = stamper(ws, self.clock)
        try:
            async for data in ws:
                self._inputs.put_nowait(_Frame(data, generation, stamp()))
        except ConnectionClosed:
            pass
        received = ws.protocol.close_rcvd
        code = received.code if received is not None else None
        reason = received.reason if received is not None else ""
        self._inputs.put_nowait(_Closed(code, reason, generation))

    async def _send(self, ws: ClientConnection, message: Message) -> None:
        if isinstance(message, Ping) and message.sent_us is not None:
            # t1 of the session clock: stamped as the frame is written, not when the core
            # asked for it, a loop turn earlier (measured: +60-90 µs of bias on loopback).
            message = msgspec.structs.replace(message, sent_us=self.clock.monotonic_us())
        with contextlib.suppress(ConnectionClosed):
            await ws.send(encode(message))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro, name="guest-socket")

    async def _shutdown(self) -> None:
        """The runner's last act: let the socket tasks end (a LEAVE sent, the close
        handshake), for at most 3 s, then cancel the rest; no task is started after."""
        if self._ws is not None:
            ws, self._ws = self._ws, None
            self._spawn(ws.close())
        await self._tasks.wait(3.0)
        await self._tasks.aclose()
        if self.end is None:
            self._finish(Ended("Stopped", "left"))
        if self._opened_player and self.player is not None:
            self.player.close()

    def _recall_offset(self, host_id: str) -> None:
        """The latency offset this machine last used with this host, if one was set."""
        if self.player is None or self._remember_in is None:
            return
        offset = remembered.host_offset(self._remember_in, host_id)
        if offset is not None:
            self.player.set_output(latency_offset_ms=offset)


DJ_WORDS = {"play": "pressed play", "pause": "paused", "seek": "moved the music"}
"""How a DJ's PLAY, PAUSE and SEEK read in every member's log."""


def _output_words(volume: float | None, offset: float | None) -> str:
    said = []
    if volume is not None:
        said.append(f"volume {round(volume * 100)}%")
    if offset is not None:
        said.append(f"latency offset {offset:+.1f} ms")
    return f"The host set this member's {' and '.join(said) or 'output'}"


def _failure_text(core: GuestSession) -> str:
    """Why the guest gave up, as the user should read it: never "You left the session"."""
    reason = core.failure or "could not reach the host"
    if core.attempt == 0:
        return f"Could not connect: {reason}"
    tries = f"{core.attempt} reconnect attempt{'s' if core.attempt != 1 else ''}"
    return f"The host stopped answering; {tries} failed (last: {reason})"


def _describe(exc: BaseException, address: HostAddress) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing is listening at {address.netloc}"
    if isinstance(exc, InvalidHandshake):
        return f"{address.netloc} is not a LOUDSYNC host ({exc})"
    return f"{address.netloc}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
