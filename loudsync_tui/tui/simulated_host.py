"""A host without sockets: a real `HostSession` on a `ManualClock`, for the demo and the
TUI tests.

It puts the session in the store as `HostService` does and hands every effect of the
core to `AppStore.host_effects`, so the rows, bans, PIN and log lines on the screens come
out of the same rules as a real session's. Guests are played at the frame level: `join`
opens a connection and sends a JOIN, `ping` a PING carrying a latency, `drop` loses the
link. What the core sends back to them goes nowhere; a connection it closes is gone.
Nothing ticks by itself: deadlines (heartbeats, held places) pass only on `tick`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

from loudsync_tui.audio.capture import SYSTEM_TITLE
from loudsync_tui.audio.source import SYSTEM_SOURCE, TrackError, expand_paths, probe
from loudsync_tui.config import HostConfig
from loudsync_tui.core.clock import ManualClock
from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.effects import Close, ConnId, HostEffect
from loudsync_tui.core.host import HostSession
from loudsync_tui.core.transport import ControlRefused, TrackMeta, Transport
from loudsync_tui.protocol import (
    PROTOCOL_VERSION,
    DeviceInfo,
    Join,
    JoinProof,
    Ping,
    SyncReport,
    encode,
)
from loudsync_tui.security.device_key import new_nonce, sign_join
from loudsync_tui.store import AppStore, HostingState, member_from_info

CLOSED_REASON = "The host ended the session"


class SimulatedHost:
    """Runs like a host service (`start`, `kick`, `lift_ban`, `set_pin`, `stop`, `aclose`).

    `config.pin == ""` and `set_pin("")` use `generated_pin`, so pictures stay the same;
    the core also admits unproven guests, so simulated ones can have readable ids.
    """

    def __init__(
        self,
        config: HostConfig,
        store: AppStore,
        *,
        session_id: str = "k3v9q2",
        address: str = "192.168.1.20:8080",
        fingerprint: str | None = None,
        wall_start_ms: int = 1_764_086_400_000,
        generated_pin: str = "135790",
    ) -> None:
        if config.pin == "":
            config = replace(config, pin=generated_pin)
        self.config = replace(config, allow_unproven=True)
        self.store = store
        self.address = address
        self.generated_pin = generated_pin
        self.fingerprint = fingerprint if config.tls else None
        self.clock = ManualClock(wall_start_ms=wall_start_ms)
        self.core = HostSession(self.config, session_id, self.clock, fingerprint=self.fingerprint)
        self._conns: dict[str, ConnId] = {}
        """The open connection of each joined member, by member id."""
        self._next_conn: ConnId = 1
        self._closed = False
        self.transport = Transport([])
        self._format_set = False

    async def start(self) -> None:
        cfg = self.config
        self.store.hosting_started(
            HostingState(
                session_id=self.core.session_id,
                session_name=cfg.session_name,
                host_id=cfg.host_id,
                host_name=cfg.host_name,
                address=self.address,
                port=int(self.address.rpartition(":")[2]),
                max_members=cfg.max_members,
                fingerprint=self.fingerprint,
                pin=self.core.pin,
            )
        )
        self.store.host_members_set(member_from_info(m, "host") for m in self.core.members)

    # Simulated guests -----------------------------------------------------------

    def join(
        self,
        member_id: str,
        name: str,
        *,
        address: str = "192.168.1.30:51000",
        device_type: str = "terminal",
        latency: float | None = None,
        key: bytes | None = None,
        audio: bool = False,
    ) -> ConnId:
        """A guest connects from `address` ("ip:port") and sends a JOIN (with the PIN, if
        any); then, given a `latency`, a PING that reports it.

        With a device `key` (raw private bytes) the JOIN proves it, as the app's guests do;
        `member_id` must then be the key's id (`DeviceKey(key).device_id`). Without one the
        guest is let in unproven, and its screen row says so.
        """
        conn = self._next_conn
        self._next_conn += 1
        nonce = new_nonce()
        self._apply(self.core.connected(conn, address, challenge=nonce))
        self._conns[member_id] = conn
        proof = None
        if key is not None:
            signed = sign_join(key, nonce, self.core.session_id, self.fingerprint, member_id)
            proof = JoinProof(public_key=signed.public_key, signature=signed.signature)
        join = Join(
            timestamp=self.clock.wall_ms(),
            session_id=self.core.session_id,
            protocol_version=PROTOCOL_VERSION,
            device=DeviceInfo(member_id, name, device_type),
            pin=self.core.pin,
            proof=proof,
            audio=audio or None,
        )
        self._apply(self.core.received(conn, encode(join)))
        if latency is not None:
            self.ping(member_id, latency)
        return conn

    def ping(
        self,
        member_id: str,
        latency: float,
        clock_uncertainty_us: float | None = None,
        sync: SyncReport | None = None,
    ) -> None:
        ping = Ping(
            timestamp=self.clock.wall_ms(),
            latency=latency,
            sent_us=None if clock_uncertainty_us is None else 0,
            clock_uncertainty_us=clock_uncertainty_us,
            sync=sync,
        )
        self._apply(self.core.received(self._conns[member_id], encode(ping)))

    def drop(self, member_id: str) -> None:
        """The member's link goes without a word: the core holds its place."""
        self._apply(self.core.disconnected(self._conns.pop(member_id)))

    def tick(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        self._apply(self.core.tick())

    # Host commands --------------------------------------------------------------

    def kick(self, member_id: str, *, ban_address: bool = False) -> None:
        self._apply(self.core.kick(member_id, ban_address=ban_address))

    def lift_ban(self, key: str) -> None:
        self._apply(self.core.lift_ban(key))

    def set_pin(self, pin: str | None) -> None:
        self._apply(self.core.set_pin(self.generated_pin if pin == "" else pin))

    def set_output(
        self, member_id: str, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        self._apply(
            self.core.set_output(member_id, volume=volume, latency_offset_ms=latency_offset_ms)
        )

    def set_dj(self, member_id: str, dj: bool) -> None:
        self._apply(self.core.set_dj(member_id, dj))

    # Music: the real transport on the fake clock; no audio is made --------------

    def queue(self, tracks: Iterable[TrackMeta], *, codec: str = "opus") -> None:
        """Tracks at the end of the queue, as if probed from files."""
        if not self._format_set:
            self._format_set = True
            # The screen reads the loop's clock: session time now is the fake clock's.
            local_now = round(time.monotonic() * 1e6)
            exact = ClockEstimate(self.core.session_clock_us - local_now, 0.0, 0.0, 0, 0, 0)
            self.store.playback_format(codec, self.transport.lead_us / 1000, exact)
        idle = self.transport.epoch is None
        first = len(self.transport.queue)
        self.store.transport_effects(self.transport.add(list(tracks)))
        if idle:
            self.store.transport_effects(self.transport.play_index(self._now(), first))

    async def add_music(self, paths: Sequence[str]) -> None:
        tracks: list[TrackMeta] = []
        for path in paths:
            if path == SYSTEM_SOURCE:
                tracks.append(TrackMeta(SYSTEM_TITLE, live=True))
                continue
            try:
                files = await asyncio.to_thread(expand_paths, [path])
            except TrackError as exc:
                self.store.log_event(str(exc), "error")
                continue
            for file in files:
                try:
                    info = await asyncio.to_thread(probe, file)
                except TrackError as exc:
                    self.store.log_event(f"Skipped: {exc}", "warning")
                    continue
                tracks.append(TrackMeta(info.title, info.artist, info.album, info.duration_ms))
        if tracks:
            self.queue(tracks)

    def control(self, action: str, seconds: float = 0.0, by: str | None = None) -> str | None:
        try:
            self.store.transport_effects(self.transport.control(self._now(), action, seconds))
        except ControlRefused as exc:
            return str(exc)
        return None

    def remove_track(self, index: int) -> None:
        self.store.transport_effects(self.transport.remove(self._now(), index))

    def set_loop(self, loop: bool) -> None:
        self.store.transport_effects(self.transport.set_loop(loop))

    def _now(self) -> int:
        return self.core.session_clock_us

    def stop(self) -> None:
        """Close soon, as the real service does from a task."""
        asyncio.get_running_loop().call_soon(self._close, CLOSED_REASON)

    async def aclose(self, reason: str = CLOSED_REASON) -> None:
        self._close(reason)

    def _close(self, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._apply(self.core.stop(reason))
        self.store.hosting_stopped(None)  # the core logged why

    def _apply(self, effects: Iterable[HostEffect]) -> None:
        """Effects to the store; a connection the core closes is then gone, as a socket's
        would be (its member, if any, stays in `_conns` no more)."""
        effects = list(effects)
        self.store.host_effects(effects)
        for effect in effects:
            if isinstance(effect, Close):
                self._conns = {k: c for k, c in self._conns.items() if c != effect.conn}
                self._apply(self.core.disconnected(effect.conn))
