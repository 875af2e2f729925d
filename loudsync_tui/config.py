"""Settings for hosting and joining; the CLI, the app and the tests build these the same way.

Durations are seconds (floats), as on the command line; the wire carries milliseconds.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8080
PORT_TRIES = 21
"""The host tries its port and the next 20 when one is taken."""


@dataclass(frozen=True, slots=True)
class HostConfig:
    session_name: str
    host_name: str
    host_id: str
    session_id: str | None = None
    """None: a fresh random id."""
    port: int = DEFAULT_PORT
    bind: str = "0.0.0.0"
    max_members: int = 10
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 15.0
    join_timeout: float = 5.0
    discovery: bool = True
    interfaces: tuple[str, ...] = ()
    """Interfaces to advertise on; empty means every IPv4 interface."""
    port_tries: int = PORT_TRIES
    max_frame_size: int = 64 * 1024
    rate_per_second: float = 20.0
    rate_burst: int = 50
    max_write_buffer: int = 1024 * 1024
    """Bytes the host may hold unsent for one connection; past it the link is cut."""
    tls: bool = False
    """Serve wss:// with this device's certificate. The CLI and the app turn it on
    unless `--no-tls`; plain is the default here so that library users opt in knowingly."""
    key_dir: str | None = None
    """Where the host key and certificate live; None: the user config directory."""
    pin: str | None = None
    """A PIN every JOIN must carry; None: no PIN."""
    allow_unproven: bool = False
    """Admit guests whose JOIN carries no device-key proof (Phase 1 clients); they are
    marked unproven and may not use a key-derived (`k-`) id."""
    raise_priority: bool = False
    """Ask for CPU priority nice -11 while hosting (`process_limits.raise_priority`), as
    the command line does unless `--normal-priority`; off here, since it changes the
    calling thread for whatever else it runs (a test runner, say)."""


@dataclass(frozen=True, slots=True)
class OutputSettings:
    """What this machine remembers of its speakers between runs (audio/remembered.py)."""

    volume: float = 1.0
    latency_offset_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """This machine's speakers, host and guest alike."""

    enabled: bool = True
    """False: no sound here (`--no-audio`, `--no-local-audio`); the session goes on."""
    device: str | None = None
    """A PortAudio output device name or index; None: the system default."""
    latency_s: float | None = None
    """The device buffer to ask for; None: PortAudio's default for the device."""
    volume: float = 1.0
    latency_offset_ms: float = 0.0
    """How much later than it reports this output really sounds (Bluetooth, HDMI):
    positive plays that much earlier, so it is heard on time."""
    dac_skew_ppm: float = 0.0
    """Diagnostic: open the device this far off its nominal rate, unknown to the player
    (a sound card with a bad crystal), to prove drift correction."""


@dataclass(frozen=True, slots=True)
class PlaybackConfig:
    """What the host plays."""

    paths: tuple[str, ...] = ()
    """Files and folders, queued in order (folders in natural order)."""
    codec: str = "opus"
    buffer_ms: float = 250.0
    """How far ahead of its play time each chunk is sent; every command takes effect
    this long after it is given. 100 ms suits a wired LAN."""
    loop: bool = False
    autoplay: bool = True


@dataclass(frozen=True, slots=True)
class GuestConfig:
    address: str
    """`HOST[:PORT]` or a `ws://` URL."""
    name: str
    device_id: str
    device_type: str = "terminal"
    session_id: str | None = None
    """None: ask the host for it."""
    connect_timeout: float = 10.0
    reconnect_attempts: int = 3
    reconnect_delay: float = 2.0
    reconnect_jitter: float = 0.25
    """Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]."""
    max_frame_size: int = 1024 * 1024
    audio: bool = False
    """Ask the host for the audio frames (a member with speakers); False: the playback
    state only (a remote control). The CLI asks for audio unless `--no-audio`."""
    clock_burst: int = 15
    """Clock probes in the first second after WELCOME (each a PING and its follow-up), for
    a first session-clock estimate within a second; 0 for a guest that needs no
    sample-accurate clock (a remote control)."""
    pin: str | None = None
    tls: bool | None = None
    """True: wss only; False: plain ws; None: try TLS, fall back to plain with a warning
    (refused when any fingerprint is expected, and never with a PIN)."""
    expected_fingerprint: str | None = None
    """The fingerprint the user verified: given with `--fingerprint`, or accepted at the
    trust question. A match counts as verified."""
    advertised_fingerprint: str | None = None
    """The mDNS TXT `fp`: anyone on the LAN can announce one, so a match is not enough to
    trust a first-seen host, but a certificate that differs is refused."""
    trust_dir: str | None = None
    """Where fingerprints pinned on first use are kept; None: nothing is pinned."""
    trust_new: bool = False
    """Accept and pin a host seen for the first time without asking."""
    replace_pin: bool = False
    """Accept a fingerprint that differs from the pinned one and pin it instead."""
    device_key: bytes | None = field(default=None, repr=False)
    """This device's raw Ed25519 private key, to prove `device_id` at JOIN (the id must be
    the one derived from it); None: join unproven, which only hosts allowing it accept."""


def _config_dir(override: str | None) -> Path:
    from loudsync_tui.identity import config_dir

    return config_dir(override)


def host_config_from_args(args: argparse.Namespace, host_id: str, name: str) -> HostConfig:
    """The `host` command's options; `session_name` is empty unless given."""
    return HostConfig(
        session_name=args.session_name or "",
        host_name=name,
        host_id=host_id,
        session_id=args.session_id,
        port=args.port,
        bind=args.bind,
        max_members=args.max_members,
        heartbeat_interval=args.heartbeat_interval,
        heartbeat_timeout=args.heartbeat_timeout,
        discovery=args.discovery,
        interfaces=tuple(args.interfaces),
        tls=args.tls,
        pin=args.pin,
        key_dir=str(_config_dir(getattr(args, "config_dir", None))),
        allow_unproven=getattr(args, "allow_unproven", False),
        raise_priority=args.raise_priority,
    )


def output_config_from_args(
    args: argparse.Namespace, remembered: OutputSettings | None = None
) -> OutputConfig:
    """The speakers' options; a volume or offset not given is the one remembered."""
    latency = getattr(args, "output_latency_ms", None)
    kept = remembered or OutputSettings()
    volume = getattr(args, "volume", None)
    offset = getattr(args, "latency_offset_ms", None)
    return OutputConfig(
        enabled=getattr(args, "audio", True),
        device=getattr(args, "audio_device", None),
        latency_s=None if latency is None else latency / 1000,
        volume=kept.volume if volume is None else volume,
        latency_offset_ms=kept.latency_offset_ms if offset is None else offset,
        dac_skew_ppm=getattr(args, "dac_skew_ppm", 0.0),
    )


def playback_config_from_args(args: argparse.Namespace) -> PlaybackConfig:
    return PlaybackConfig(
        paths=tuple(getattr(args, "play", ())),
        codec=getattr(args, "codec", "opus"),
        buffer_ms=getattr(args, "buffer_ms", 250.0),
        loop=getattr(args, "loop", False),
    )


def guest_config_from_args(
    args: argparse.Namespace, device_id: str, name: str, device_key: bytes | None = None
) -> GuestConfig:
    """The `join` command's options, with the identity that proves `device_id`."""
    return GuestConfig(
        address=args.address,
        name=name,
        device_id=device_id,
        device_key=device_key,
        session_id=args.session_id,
        connect_timeout=args.connect_timeout,
        reconnect_attempts=max(0, args.reconnect_attempts),
        reconnect_delay=args.reconnect_delay,
        pin=args.pin,
        expected_fingerprint=args.fingerprint,
        trust_new=args.trust_new,
        replace_pin=args.replace_pin,
        trust_dir=str(_config_dir(getattr(args, "config_dir", None))),
    )
