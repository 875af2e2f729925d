"""Hosting, put together: the session core, its server, the LAN advertisement, the store.

This is the host-side adapter the app and the headless mode use. It turns the core's
member events into store actions and log lines, and keeps the mDNS record's member
count current. The UI reaches it only through the app, which holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from loudsync_tui.audio.codec import codec_from_name
from loudsync_tui.audio.player import Player
from loudsync_tui.audio.source import SYSTEM_SOURCE, TrackError, TrackInfo, expand_paths, probe
from loudsync_tui.config import HostConfig, OutputConfig, PlaybackConfig
from loudsync_tui.core.clock import Clock, SystemClock
from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.effects import (
    AudioWanted,
    ControlRequested,
    HostEffect,
    MemberAdded,
    MemberRemoved,
    PinChanged,
)
from loudsync_tui.core.host import HostSession
from loudsync_tui.core.transport import NOTHING_TO_PLAY, ControlRefused
from loudsync_tui.identity import config_dir
from loudsync_tui.net.audio_streamer import AudioStreamer
from loudsync_tui.net.discovery import Security, SessionAdvertiser, machine_addresses
from loudsync_tui.net.process_limits import (
    members_now,
    raise_open_files,
    raise_priority,
    restore_priority,
)
from loudsync_tui.net.server import SessionServer
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.protocol import SessionInfo
from loudsync_tui.security.certificate import HostCertificate, load_or_create
from loudsync_tui.security.pin import check_pin_format, generate_pin
from loudsync_tui.store import AppStore, HostingState, member_from_info

log = logging.getLogger(__name__)

SKIPS_LOGGED = 5
"""A folder with many unreadable files logs this many of them, then a count."""

PIN_NEEDS_TLS = "A PIN needs TLS: it is only sent encrypted, so a --no-tls session cannot have one"


class HostStartError(Exception):
    """The session could not start; the message says why in words a person can act on."""


class Advertiser(Protocol):
    async def start(
        self, info: SessionInfo, port: int, addresses: Sequence[str], security: Security
    ) -> str: ...

    async def update(self, member_count: int, security: Security | None = None) -> None: ...

    async def stop(self) -> None: ...


def lan_address(bind: str, interfaces: tuple[str, ...] = ()) -> str:
    """The address to give out: the bound one, a pinned interface, or the first LAN IPv4."""
    if bind not in ("0.0.0.0", "::", ""):
        return bind
    if interfaces:
        return interfaces[0]
    lan = (a for a in machine_addresses() if a.version == 4 and not a.is_loopback)
    return str(next(lan, "127.0.0.1"))


def _tick_period(cfg: HostConfig) -> float:
    """Often enough for the tightest deadline; at least once a second."""
    return max(0.01, min(1.0, cfg.heartbeat_timeout / 10, cfg.join_timeout / 5))


class HostService:
    def __init__(
        self,
        config: HostConfig,
        store: AppStore,
        *,
        advertiser: Advertiser | None = None,
        clock: Clock | None = None,
        playback: PlaybackConfig | None = None,
        output: OutputConfig | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.playback = playback or PlaybackConfig()
        self.output = output or OutputConfig()
        self.streamer: AudioStreamer | None = None
        self.player: Player | None = None
        self.session_id = config.session_id or secrets.token_urlsafe(6)
        if config.pin == "":
            config = replace(config, pin=generate_pin())
            self.config = config
        self.certificate: HostCertificate | None = None
        self.core = HostSession(config, self.session_id, clock or SystemClock())
        self.server = SessionServer(self.core, self._on_events, tick_period=_tick_period(config))
        if advertiser is None and config.discovery:
            advertiser = SessionAdvertiser(config.interfaces)
        self._advertiser = advertiser
        self._advertised = False
        self._tasks = TaskOwner("host service")  # announcing, closing, advertisement updates
        self._announcing: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None
        self.port = 0
        self.address = ""
        self._nice_before: int | None = None
        """The nice value hosting found, when it raised its priority: put back at the end."""

    @property
    def fingerprint(self) -> str | None:
        return None if self.certificate is None else self.certificate.fingerprint

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        scheme = "wss" if self.certificate is not None else "ws"
        return f"{scheme}://{host}:{self.port}"

    @property
    def give_out(self) -> str:
        """What a guest types after `loudsync-tui join`."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Listen, advertise and play; a start that fails leaves the priority it found."""
        said: list[str] = []
        if self.config.raise_priority:
            self._nice_before, said = raise_priority()  # first: threads started later share it
        try:
            await self._start()
        except BaseException:
            self._put_priority_back()
            raise
        for line in said:  # once hosting, not before an error that stops the start
            self.store.log_event(line)

    def _put_priority_back(self) -> None:
        if self._nice_before is not None:
            restore_priority(self._nice_before)
            self._nice_before = None

    async def _start(self) -> None:
        cfg = self.config
        tracks = await self._queue() if self.playback.paths else []
        if cfg.pin is not None and (problem := check_pin_format(cfg.pin)):
            raise HostStartError(f"Bad PIN: {problem}")
        if cfg.pin is not None and not cfg.tls:
            raise HostStartError(PIN_NEEDS_TLS)
        if (short := raise_open_files(cfg.max_members)) is not None:
            self.store.log_event(short, "warning")
        ssl_context = None
        if cfg.tls:
            try:
                self.certificate = await asyncio.to_thread(
                    load_or_create, Path(cfg.key_dir) if cfg.key_dir else config_dir()
                )
                ssl_context = self.certificate.server_context()
                self.core.fingerprint = self.certificate.fingerprint  # JOIN proofs bind it
            except (OSError, ValueError) as exc:
                raise HostStartError(f"Cannot load or create the host certificate: {exc}") from None
        try:
            self.port = await self.server.listen(
                cfg.bind, cfg.port, cfg.port_tries, ssl_context=ssl_context
            )
        except OSError as exc:
            # strerror, not str(exc): "[Errno 98]" is no help to a person, and said it twice.
            why = exc.strerror or str(exc)
            raise HostStartError(f"Cannot listen on {cfg.bind}:{cfg.port}: {why}") from None
        self.address = lan_address(cfg.bind, cfg.interfaces)
        if cfg.port not in (0, self.port):
            self.store.log_event(f"Port {cfg.port} was taken; listening on {self.port}", "warning")
        self.store.hosting_started(
            HostingState(
                session_id=self.session_id,
                session_name=cfg.session_name,
                host_id=cfg.host_id,
                host_name=cfg.host_name,
                address=self.give_out,
                port=self.port,
                max_members=cfg.max_members,
                fingerprint=self.fingerprint,
                pin=self.core.pin,
            )
        )
        self.store.host_members_set(
            member_from_info(m, "host", audio=self.output.enabled) for m in self.core.members
        )
        if tracks:
            await self._start_playback(tracks)
        if self._advertiser is not None:
            # mDNS probing takes about two seconds; guests can join by address meanwhile,
            # so the session is ready (and says so) as soon as it listens.
            self._announcing = self._tasks.spawn(self._announce(self._advertiser), name="announce")

    async def _queue(self) -> list[TrackInfo]:
        """The files to play, checked before anything listens: a file FFmpeg cannot read
        is skipped with a warning; none playable, or a bad codec, stops the start."""
        cfg = self.playback
        try:
            codec_from_name(cfg.codec)
        except ValueError as exc:
            why = str(exc)
            raise HostStartError(why[:1].upper() + why[1:]) from None
        tracks, skipped = await asyncio.to_thread(_queue, cfg.paths)
        if not tracks:
            why = (
                skipped[0]
                if len(skipped) == 1
                else f"none of {len(skipped)} files (first: {skipped[0]})"
            )
            raise HostStartError(f"Nothing to play: {why}")
        for why in skipped:
            self.store.log_event(f"Skipped: {why}", "warning")
        return tracks

    async def _start_playback(self, tracks: list[TrackInfo]) -> None:
        streamer = await self._playback()
        streamer.add(tracks)
        if self.playback.autoplay:
            streamer.play()

    async def _playback(self) -> AudioStreamer:
        """The streamer, started on first use: the local speakers open (unless told not
        to) only once there is music, so hosting alone never touches the sound system."""
        if self.streamer is not None:
            return self.streamer
        cfg = self.playback
        codec = codec_from_name(cfg.codec)
        player: Player | None = None
        if self.output.enabled:
            player = Player.of(self.output)
            problem = await asyncio.to_thread(player.start)
            if problem is None:
                # The host's own clock is the session clock: an exact mapping.
                player.set_clock(ClockEstimate(-self.core.started_us, 0.0, 0.0, 0, 0, 0))
                self.store.playback_output(player.device_name or "default output")
            else:
                player = None
                self.store.playback_silent(f"no sound here: {problem}")
                self.store.log_event(f"No sound on this machine: {problem}", "warning")
        if self.streamer is not None:  # another caller got here first while we waited
            if player is not None:
                player.close()
            return self.streamer
        self.player = player
        self.streamer = AudioStreamer(
            self.core,
            self.server,
            [],
            on_events=self._on_events,
            on_transport=self.store.transport_effects,
            codec=codec,
            buffer_ms=cfg.buffer_ms,
            loop=cfg.loop,
            local=self.player,
        )
        exact = ClockEstimate(-self.core.started_us, 0.0, 0.0, 0, 0, 0)
        self.store.playback_format(cfg.codec, cfg.buffer_ms, exact)
        self.streamer.start()
        self._tasks.spawn(self._report_sync(), name="sync-report")
        return self.streamer

    async def add_music(self, paths: Sequence[str]) -> None:
        """Files or whole folders at the end of the queue. When nothing plays, the first
        of them starts: choosing music is asking to hear it."""
        try:
            tracks, skipped = await asyncio.to_thread(_queue, paths)
        except HostStartError as exc:
            self.store.log_event(str(exc), "error")
            return
        for why in skipped[:SKIPS_LOGGED]:
            self.store.log_event(f"Skipped: {why}", "warning")
        if len(skipped) > SKIPS_LOGGED:
            more = len(skipped) - SKIPS_LOGGED
            self.store.log_event(f"Skipped {more} more files", "warning")
        if not tracks:
            if not skipped:
                self.store.log_event("No audio files there", "warning")
            return
        if self._closed.is_set() or self._closing is not None:
            return
        streamer = await self._playback()
        first_new = len(streamer.tracks)
        idle = streamer.transport.epoch is None
        streamer.add(tracks)
        what = repr(tracks[0].title) if len(tracks) == 1 else f"{len(tracks)} tracks"
        self.store.log_event(f"Queued {what}")
        if idle:
            streamer.play_index(first_new)

    async def _report_sync(self) -> None:
        """The local output's figures into the store, once a second."""
        while True:
            await asyncio.sleep(1.0)
            if self.player is not None:
                self.store.playback_sync(self.player.report())

    async def _announce(self, advertiser: Advertiser) -> None:
        try:
            await advertiser.start(
                self.core.session_info(), self.port, [self.address], self._security()
            )
            self._advertised = True
        except Exception as exc:
            self.store.log_event(
                f"Not advertised on the LAN ({exc}); guests can join by address {self.give_out}",
                "warning",
            )

    # Commands from the app ------------------------------------------------------

    def kick(self, member_id: str, *, ban_address: bool = False) -> None:
        self.server.apply(self.core.kick(member_id, ban_address=ban_address))

    def lift_ban(self, key: str) -> None:
        self.server.apply(self.core.lift_ban(key))

    def set_pin(self, pin: str | None) -> None:
        """A new PIN for joins from now on ("" generates one); members already in stay."""
        if pin is not None and not self.config.tls:
            self.store.log_event(PIN_NEEDS_TLS, "error")
            return
        if pin == "":
            pin = generate_pin()
        self.server.apply(self.core.set_pin(pin))

    def control(self, action: str, seconds: float = 0.0, by: str | None = None) -> str | None:
        """play, pause, toggle, seek (by `seconds`), next, prev (`Transport.control`), in
        the name of DJ `by` if given. Returns why it cannot, None if done."""
        if self.streamer is None:
            return NOTHING_TO_PLAY
        try:
            self.streamer.control(action, seconds, by)
        except ControlRefused as exc:
            return str(exc)
        return None

    def remove_track(self, index: int) -> None:
        if self.streamer is not None:
            self.streamer.remove(index)

    def set_loop(self, loop: bool) -> None:
        """Loop the queue (or stop looping); kept for music added later."""
        self.playback = replace(self.playback, loop=loop)
        if self.streamer is not None:
            self.streamer.set_loop(loop)
        else:
            self.store.playback_loop(loop)

    def set_dj(self, member_id: str, dj: bool) -> None:
        """Let a member play, pause, seek and skip (or no longer)."""
        self.server.apply(self.core.set_dj(member_id, dj))

    def set_output(
        self, member_id: str, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        """A member's volume or latency offset; the host's own row is its local player."""
        if member_id == self.config.host_id:
            if self.player is None:
                self.store.log_event("This machine plays no sound to set", "warning")
            else:
                self.player.set_output(volume=volume, latency_offset_ms=latency_offset_ms)
            return
        self.server.apply(
            self.core.set_output(member_id, volume=volume, latency_offset_ms=latency_offset_ms)
        )

    def stop(self) -> None:
        if self._closing is None and not self._closed.is_set():
            self._closing = self._tasks.spawn(self.aclose(), name="host-close")

    async def aclose(self, reason: str = "The host ended the session") -> None:
        closing = self._closing
        if closing is not None and closing is not asyncio.current_task():
            await asyncio.wait({closing})  # `stop` began it: let it finish, do not cancel it
        if self._closed.is_set():
            return
        try:
            try:
                if self.streamer is not None:
                    await self.streamer.aclose()  # no chunk after the goodbye
                await self.server.close(reason)
            finally:
                # The announcement still probing and any advertisement update still
                # pending are cancelled; the goodbye below replaces them.
                await self._tasks.aclose()
            if self._advertised and self._advertiser is not None:
                with contextlib.suppress(Exception):
                    await self._advertiser.stop()
        finally:
            if self.player is not None:
                self.player.close()
            self._put_priority_back()
            self._closed.set()
            self.store.hosting_stopped(None)  # the core logged why

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # Core effects -> store ------------------------------------------------------

    def _on_events(self, events: list[HostEffect]) -> None:
        """Every effect the server does not carry out itself goes to the store's one reducer
        (the log included: the app mirrors it to its file, the headless host prints it)."""
        for event in events:
            if isinstance(event, AudioWanted) and self.streamer is not None:
                self.streamer.catch_up(event.conn)
            elif isinstance(event, ControlRequested):
                self._dj_control(event)
        self.store.host_effects(events)
        if any(isinstance(e, MemberAdded | MemberRemoved | PinChanged) for e in events):
            self._advertise_count()
        if any(isinstance(e, MemberAdded) for e in events):
            members_now(self.core.member_count)

    def _dj_control(self, request: ControlRequested) -> None:
        """A DJ's CONTROL, carried out as the host's own key would be, in their name."""
        problem = self.control(request.action, request.seconds, by=request.name)
        what = (
            f"{request.action} {request.seconds:+g} s"
            if request.action == "seek"
            else request.action
        )
        if problem is None:
            self.store.log_event(f"DJ {request.name}: {what}")
        else:
            self.store.log_event(f"DJ {request.name} asked for {what}: {problem}", "warning")

    def _advertise_count(self) -> None:
        """Keep the TXT record's member count and PIN flag current."""
        if self._advertised and self._advertiser is not None and not self._tasks.closed:
            update = _update_advertisement(
                self._advertiser, self.core.member_count, self._security()
            )
            self._tasks.spawn(update, name="advertisement-update")

    def _security(self) -> Security:
        return Security(self.fingerprint, self.core.pin is not None)


def _queue(paths: Sequence[str]) -> tuple[list[TrackInfo], list[str]]:
    """The playable tracks of `paths`, in order, and why each other one is not. The word
    `system` is this machine's sound, a live track (its speakers then play the session's
    synced copy: audio/capture.py); `./system` is a file of that name."""
    from loudsync_tui.audio.capture import CaptureError, system_track

    if not paths:
        raise HostStartError("no files given")
    tracks: list[TrackInfo] = []
    skipped: list[str] = []
    for given in paths:
        if given == SYSTEM_SOURCE:
            try:
                tracks.append(system_track())
            except CaptureError as exc:
                raise HostStartError(str(exc)) from None
            continue
        try:
            files = expand_paths([given])
        except TrackError as exc:
            raise HostStartError(str(exc)) from None
        for path in files:
            try:
                tracks.append(probe(path))
            except TrackError as exc:
                skipped.append(str(exc))
    return tracks, skipped


async def _update_advertisement(advertiser: Advertiser, members: int, security: Security) -> None:
    try:
        await advertiser.update(members, security)
    except Exception as exc:  # the session goes on; only the LAN listing is stale
        log.warning("updating the LAN advertisement failed: %s", exc)
