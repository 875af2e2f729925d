"""What the app needs to know at start: who this device is and the options it runs with.

Built once from the command line (or directly by tests); hosting and joining copy the
config templates with `dataclasses.replace`, so every CLI option reaches the services.
From the command line, hosting is TLS (unless `--no-tls`) with the key in the
config directory, and joining pins fingerprints there, whichever screen the app opens.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, replace
from typing import Literal

from loudsync_tui.audio import remembered
from loudsync_tui.config import (
    GuestConfig,
    HostConfig,
    OutputConfig,
    PlaybackConfig,
    guest_config_from_args,
    host_config_from_args,
    output_config_from_args,
    playback_config_from_args,
)
from loudsync_tui.identity import config_dir, default_name, load_identity
from loudsync_tui.net.discovery import DEFAULT_PROBE, ProbeOptions
from loudsync_tui.tui.logfile import log_path

StartScreen = Literal["browse", "host", "join"]


@dataclass(frozen=True, slots=True)
class AppSettings:
    name: str
    device_id: str
    interfaces: tuple[str, ...] = ()
    start: StartScreen = "browse"
    session_name: str | None = None
    """Given on the command line: hosting then skips the name prompt."""
    join_address: str | None = None
    host: HostConfig = field(default_factory=lambda: HostConfig("", "", ""))
    """Template; `session_name` is filled in when the user hosts."""
    guest: GuestConfig = field(default_factory=lambda: GuestConfig("", "", ""))
    """Template; `address` is filled in when the user joins."""
    log_file: str | None = None
    """This instance's own log file; None: log nowhere (tests, the demo)."""
    probe: ProbeOptions = DEFAULT_PROBE
    """How Browse checks that listed hosts still answer (`--probe-interval`,
    `--probe-timeout`)."""
    playback: PlaybackConfig = field(default_factory=PlaybackConfig)
    """What a hosted session plays from the start (`host --play`), and how it sends it."""
    output: OutputConfig = field(default_factory=lambda: OutputConfig(enabled=False))
    """This machine's speakers; off unless built from the command line (tests, demos)."""
    config_dir: str | None = None
    """Where output settings are remembered; None: nowhere."""
    music_dir: str | None = None
    """Where the music picker opens; None: the user's Music folder, else their home."""
    settle_collector: bool = False
    """Once hosting has started, keep what exists out of the garbage collector's sight
    (`process_limits.settle_the_collector`): for the real app, not for tests sharing a
    process."""

    @classmethod
    def for_device(cls, name: str, device_id: str, device_key: bytes | None = None) -> AppSettings:
        """Defaults for every option, with this device's name, id and key in the templates."""
        return cls(
            name=name,
            device_id=device_id,
            host=HostConfig("", name, device_id),
            guest=GuestConfig("", name, device_id, device_key=device_key),
        )


def settings_from_args(args: argparse.Namespace) -> AppSettings:
    """Read the parsed command line; loads (or creates) this instance's device identity."""
    directory = config_dir(getattr(args, "config_dir", None))
    identity = load_identity(directory)
    name = getattr(args, "name", None) or default_name()
    interfaces = tuple(getattr(args, "interfaces", None) or ())
    command = getattr(args, "command", None)
    host = HostConfig(
        "",
        name,
        identity.device_id,
        interfaces=interfaces,
        tls=args.tls,
        key_dir=str(directory),
        raise_priority=args.raise_priority,
    )
    key = identity.key.private
    guest = GuestConfig("", name, identity.device_id, trust_dir=str(directory), device_key=key)
    start: StartScreen = "browse"
    session_name: str | None = None
    address: str | None = None
    playback = PlaybackConfig()
    if command == "host":
        start = "host"
        session_name = args.session_name
        host = host_config_from_args(args, identity.device_id, name)
        playback = playback_config_from_args(args)
    elif command == "join":
        start = "join"
        address = args.address
        guest = replace(guest_config_from_args(args, identity.device_id, name, key), address="")
    return AppSettings(
        name=name,
        device_id=identity.device_id,
        interfaces=interfaces,
        start=start,
        session_name=session_name,
        join_address=address,
        host=host,
        guest=guest,
        log_file=str(log_path(directory, identity.slot)),
        playback=playback,
        output=output_config_from_args(args, remembered.load(directory)),
        config_dir=str(directory),
        settle_collector=True,
        probe=ProbeOptions(
            interval=getattr(args, "probe_interval", None) or DEFAULT_PROBE.interval,
            timeout=getattr(args, "probe_timeout", None) or DEFAULT_PROBE.timeout,
        ),
    )
