"""Realistic, reproducible data for the screenshots and snapshot tests; no network.

The demo host is a `SimulatedHost` (a real host core on a fake clock) and the demo
guest fills the store the way the guest service would, so every screen can be shown
(and compared) without sockets or multicast.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DirectoryTree

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.transport import TrackMeta
from loudsync_tui.protocol import ConnectionStatus, SyncReport
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.security.trust import decide, host_label
from loudsync_tui.store import AppStore, ConnectionState, DiscoveredSession, member_from_info
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.services import Services
from loudsync_tui.tui.settings import AppSettings
from loudsync_tui.tui.simulated_host import SimulatedHost
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.session_table import SessionTable

T0 = 1_764_086_400_000
"""2025-11-25 16:00 UTC, in ms: every clock on the demo screens counts from here."""
FINGERPRINT = hashlib.sha256(b"LOUDSYNC demo host").hexdigest()
"""Grace's certificate fingerprint on every demo screen."""
IMPOSTOR = hashlib.sha256(b"LOUDSYNC impostor").hexdigest()
PIN = "482913"

_PEOPLE: list[tuple[str, str, float, ConnectionStatus, float, SyncReport | None]] = [
    ("Ada", "terminal", 3.2, "connected", 38.0, SyncReport(62.0, 0, 238.0, 1.00002, 1.0, 0.0)),
    (
        "Linus",
        "terminal",
        12.8,
        "connected",
        1420.0,
        SyncReport(-1830.0, 3, 212.0, 0.9999, 0.8, 180.0),
    ),
    ("Hedy", "terminal", 41.0, "reconnecting", 0.0, None),
    ("Alan", "remote", 7.4, "connected", 64.0, None),
]
"""Name, device, latency ms, status, how well each knows the session clock (µs), and how
its speakers follow the music (None: Alan's is a remote, Hedy's link is down)."""
QUEUE = [
    TrackMeta("Clair de lune", "Claude Debussy", "Suite bergamasque", 301_000),
    TrackMeta("So What", "Miles Davis", "Kind of Blue", 562_000),
    TrackMeta("Teardrop", "Massive Attack", "Mezzanine", 330_000),
    TrackMeta("Windowlicker", "Aphex Twin", None, 367_000),
]
PLAYED_S = 83
"""How far into the first track every demo picture is."""


def demo_identity(name: str) -> tuple[str, bytes]:
    """The device id and key of a demo person: the same on every run."""
    key = DeviceKey(hashlib.sha256(f"LOUDSYNC demo {name}".encode()).digest())
    return key.device_id, key.private


def demo_sessions() -> list[DiscoveredSession]:
    def session(
        key: str,
        name: str,
        host: str,
        ip: str,
        members: int,
        why_not: str | None = None,
        *,
        tls: bool = True,
        pin: bool = False,
    ) -> DiscoveredSession:
        fingerprint = hashlib.sha256(key.encode()).hexdigest() if tls else None
        return DiscoveredSession(
            key,
            key,
            name,
            host,
            (ip,),
            8080,
            members,
            10,
            1,
            why_not is None,
            why_not,
            encrypted=tls,
            fingerprint=fingerprint,
            pin_required=pin,
        )

    return [
        session("k3v9q2", "Friday listening", "Grace", "192.168.1.20", 5, pin=True),
        session("p8s1xz", "Studio B mix", "Ada", "192.168.1.34", 2),
        session("w5n2hb", "Lobby speakers", "Alan", "192.168.1.42", 3, tls=False),
        session("m2r7cc", "Room 4 rehearsal", "Linus", "192.168.1.51", 10, "full"),
        session("z0q4ty", "Classroom", "Hedy", "192.168.1.77", 1, "newer protocol"),
    ]


class DemoHost(SimulatedHost):
    """Grace's session with four guests (Hedy's link dropped) and Mallory banned, all
    through a real host core: rows, bans and log lines come out of its rules."""

    def __init__(self, config: HostConfig, store: AppStore) -> None:
        config = replace(config, tls=True, pin=PIN)
        super().__init__(config, store, fingerprint=FINGERPRINT, wall_start_ms=T0)

    async def start(self) -> None:
        await super().start()
        self.populate()
        self.play_demo_music()

    def populate(self) -> None:
        """Mallory (an old client, unproven) joins and is kicked and banned; then the
        people join, each proving its device key."""
        self.join("dev-mallory", "Mallory", address="192.168.1.66:51704")
        self.kick("dev-mallory", ban_address=True)
        for name, device, latency, status, clock_us, sync in _PEOPLE:
            member_id, key = demo_identity(name)
            self.clock.advance(97)  # no tick: nobody times out, Hedy's place is held
            address = f"192.168.1.{30 + len(name)}:51{len(name)}04"
            self.join(
                member_id,
                name,
                address=address,
                device_type=device,
                latency=latency,
                key=key,
                audio=device != "remote",
            )
            if status == "reconnecting":
                self.drop(member_id)
            else:
                self.ping(member_id, latency, clock_uncertainty_us=clock_us, sync=sync)
        self.set_dj(demo_identity("Ada")[0], True)

    def play_demo_music(self) -> None:
        """The queue, PLAYED_S seconds into its first track as the screen's frozen clock
        (0) sees it; this machine's own speakers reporting alongside the guests'."""
        self.queue(QUEUE)
        epoch = self.store.get().playback.epoch
        if epoch is not None:
            at_zero = ClockEstimate(round(epoch.t0_us + PLAYED_S * 1e6), 0.0, 0.0, 0, 0, 0)
            playback = self.store.get().playback
            self.store.playback_format(playback.codec or "opus", playback.buffer_ms or 250, at_zero)
        self.store.playback_output("Built-in Audio Analog Stereo")
        self.store.playback_sync(SyncReport(21.0, 0, 244.0, 1.0, 1.0, 0.0))


@dataclass
class DemoGuest:
    config: GuestConfig
    store: AppStore
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    trust: str | None = None
    """"new" or "changed": the join stops at that trust question instead."""
    link_lost: bool = True
    """The picture with the link down (reconnecting); False: connected, playing."""

    def start(self) -> None:
        store = self.store
        store.guest_joining(self.config.address)
        if self.trust is not None:
            changed = self.trust == "changed"
            observed = IMPOSTOR if changed else FINGERPRINT
            pinned = FINGERPRINT if changed else None
            decision = decide(
                host_label("Grace", "Friday listening"),
                observed,
                pinned=pinned,
                address=self.config.address,
            )
            store.guest_security(encrypted=True, fingerprint=observed)
            store.guest_ended(
                decision.message, "untrusted", question=decision.message, changed=changed
            )
            self.ended.set()
            return
        store.guest_welcomed(
            client_id=self.config.device_id,
            session_id="k3v9q2",
            session_name="Friday listening",
            host_name="Grace",
            max_members=10,
        )
        # The members as the host's MEMBER_LIST says them (this guest is Ada).
        host = DemoHost(HostConfig("Friday listening", "Grace", "dev-grace"), AppStore())
        host.populate()
        store.guest_members_set(member_from_info(m) for m in host.core.members)
        store.guest_latency(3.2)
        store.guest_security(encrypted=True, fingerprint=FINGERPRINT)
        # The host's music as Ada's app follows it: PLAYED_S into the first track.
        host.play_demo_music()
        playing = host.store.get().playback
        if playing.track is not None and playing.epoch is not None and playing.clock:
            store.playback_track(replace(playing.track, queue_length=len(QUEUE)))
            store.playback_epoch(playing.epoch)
            store.guest_clock(replace(playing.clock, uncertainty_us=38.0))
            store.playback_format(playing.codec or "opus", playing.buffer_ms or 250)
        store.playback_output("USB Audio Device")
        store.playback_sync(SyncReport(62.0, 0, 238.0, 1.00002, 1.0, 0.0))
        store.log_event("Joined 'Friday listening' hosted by Grace")
        if not self.link_lost:
            store.guest_connection(ConnectionState.CONNECTED)
            store.log_event("The host made you a DJ: you can play, pause, seek and skip")
            store.log_event("Linus paused")
            store.log_event("Linus pressed play")
            return
        store.log_event("Connection to the host lost; reconnecting", "warning")
        store.guest_connection(
            ConnectionState.RECONNECTING, attempt=2, max_attempts=3, next_attempt_at=3.0
        )

    def leave(self) -> None:
        self.store.guest_ended("You left", "left")
        self.ended.set()

    def retry(self) -> None:
        pass

    def control(self, action: str, seconds: float = 0.0) -> None:
        pass

    def set_local_output(
        self, *, volume: float | None = None, latency_offset_ms: float | None = None
    ) -> None:
        pass

    async def aclose(self) -> None:
        self.ended.set()

    async def wait_ended(self) -> object:
        await self.ended.wait()
        return "left"


DEMO_MUSIC = Path(tempfile.gettempdir()) / "loudsync-demo" / "Music"
"""A folder of empty files with music names, for the picker's picture."""
_DEMO_FILES = {
    "Claude Debussy - Suite bergamasque": ["01 Prelude.flac", "03 Clair de lune.flac"],
    "Miles Davis - Kind of Blue": ["01 So What.flac", "02 Freddie Freeloader.flac"],
    "Massive Attack - Mezzanine": [],
    "Podcasts": [],
}


def demo_music() -> Path:
    for folder, files in _DEMO_FILES.items():
        (DEMO_MUSIC / folder).mkdir(parents=True, exist_ok=True)
        for name in files:
            (DEMO_MUSIC / folder / name).touch()
    (DEMO_MUSIC / "Windowlicker.mp3").touch()
    (DEMO_MUSIC / "notes.txt").touch()  # not music: the picker leaves it out
    return DEMO_MUSIC


def demo_app(start: str = "browse") -> LoudsyncApp:
    """An app with demo services, a frozen clock and (on Browse) four sessions listed."""
    store = AppStore()
    store.clock = lambda: T0 + 600_000
    settings = AppSettings.for_device("Grace", "dev-grace")
    if start == "host":
        settings = replace(
            settings,
            start="host",
            session_name="Friday listening",
            music_dir=str(demo_music()),
        )
    elif start.startswith("guest"):
        settings = replace(
            AppSettings.for_device("Ada", *demo_identity("Ada")),
            start="join",
            join_address="192.168.1.20:8080",
        )
    trust = start.removeprefix("guest-") if start in ("guest-new", "guest-changed") else None

    def guest(config: GuestConfig, store: AppStore) -> DemoGuest:
        return DemoGuest(config, store, trust=trust, link_lost=start != "guest-playing")

    services = Services(host=DemoHost, guest=guest, browser=None)
    app = LoudsyncApp(store=store, settings=settings, services=services)
    app.monotonic = lambda: 0.0
    if start == "browse":
        store.discovery_started()
        for session in demo_sessions():
            store.session_seen(session)
    return app


async def _settle(pilot: Pilot[object], until: Callable[[], object]) -> None:
    for _ in range(500):
        if until():
            break
        await pilot.pause(0.01)
    await pilot.pause()


Scene = tuple[str, Callable[[Pilot[object]], Awaitable[None]]]


def _members_shown(pilot: Pilot[object], count: int) -> Callable[[], bool]:
    def check() -> bool:
        tables = pilot.app.screen.query(MemberTable)
        return bool(tables) and tables.first().row_count == count

    return check


def scenes() -> dict[str, Scene]:
    """Name -> (start screen, what to do before the picture is taken)."""

    async def browse(pilot: Pilot[object]) -> None:
        await _settle(pilot, lambda: pilot.app.screen.query(SessionTable))
        await pilot.press("down")

    async def host(pilot: Pilot[object]) -> None:
        await _settle(pilot, _members_shown(pilot, 5))

    async def kick(pilot: Pilot[object]) -> None:
        await host(pilot)
        await pilot.press("down", "down", "k")
        await _settle(pilot, lambda: pilot.app.screen.query(".dialog"))

    async def picker(pilot: Pilot[object]) -> None:
        await host(pilot)
        await pilot.press("o")

        def listed() -> bool:
            trees = pilot.app.screen.query(DirectoryTree)
            return bool(trees) and len(trees.first().root.children) == 5

        await _settle(pilot, listed)
        await pilot.press("down", "down")

    async def help_(pilot: Pilot[object]) -> None:
        await host(pilot)
        await pilot.press("question_mark")
        await _settle(pilot, lambda: pilot.app.screen.query("#help-keys"))

    async def bans(pilot: Pilot[object]) -> None:
        await host(pilot)
        await pilot.press("b")
        await _settle(pilot, lambda: pilot.app.screen.query("#bans"))

    async def pin(pilot: Pilot[object]) -> None:
        await host(pilot)
        await pilot.press("p")
        await _settle(pilot, lambda: pilot.app.screen.query("#pin-input"))
        await pilot.press(*"12")

    async def pin_prompt(pilot: Pilot[object]) -> None:
        await _settle(pilot, lambda: pilot.app.screen.query(SessionTable))
        await pilot.press("enter")
        await _settle(pilot, lambda: pilot.app.screen.query("Input"))

    async def trust(pilot: Pilot[object]) -> None:
        await _settle(pilot, lambda: pilot.app.screen.query("#trust-question"))

    async def name_prompt(pilot: Pilot[object]) -> None:
        await _settle(pilot, lambda: pilot.app.screen.query(SessionTable))
        await pilot.press("h")
        await _settle(pilot, lambda: pilot.app.screen.query("Input"))

    return {
        "browse": ("browse", browse),
        "host-name": ("browse", name_prompt),
        "host": ("host", host),
        "kick-confirm": ("host", kick),
        "guest-reconnecting": ("guest", host),
        "guest-playing": ("guest-playing", host),
        "help": ("host", help_),
        "picker": ("host", picker),
        "bans": ("host", bans),
        "pin-change": ("host", pin),
        "pin-prompt": ("browse", pin_prompt),
        "trust-new": ("guest-new", trust),
        "trust-changed": ("guest-changed", trust),
    }
