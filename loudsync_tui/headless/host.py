"""`loudsync-tui host --headless`: host a session with no screen, logging to stderr."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from pathlib import Path

from loudsync_tui.audio import remembered
from loudsync_tui.config import (
    HostConfig,
    OutputConfig,
    PlaybackConfig,
    host_config_from_args,
    output_config_from_args,
    playback_config_from_args,
)
from loudsync_tui.headless.commands import read_commands
from loudsync_tui.headless.console import (
    emit,
    emit_log,
    fail,
    identity_from,
    on_stop_signals,
    print_log,
    stdout,
)
from loudsync_tui.headless.playback_events import report_sync, watch_playback
from loudsync_tui.identity import config_dir
from loudsync_tui.net.host_service import HostService, HostStartError
from loudsync_tui.net.process_limits import settle_the_collector
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.security.certificate import comparison_code, readable
from loudsync_tui.store import AppStore


async def serve_headless(
    config: HostConfig,
    *,
    as_json: bool = False,
    playback: PlaybackConfig | None = None,
    output: OutputConfig | None = None,
    commands: bool = False,
    remember_in: Path | None = None,
) -> int:
    store = AppStore()
    if as_json:
        emit_log(store)
    else:
        print_log(store)
    watch_playback(store, as_json=as_json)
    service = HostService(config, store, playback=playback, output=output)
    try:
        await service.start()
        settle_the_collector()  # a process of its own: what exists now stays
    except HostStartError as exc:
        return fail(str(exc))
    # A PIN the user chose is not repeated anywhere; a generated one is shown once, on
    # stdout with the ready line, because stderr tends to end up in system logs.
    generated_pin = service.core.pin if config.pin == "" else None
    if as_json:
        emit(
            "ready",
            sessionId=service.session_id,
            url=service.url,
            joinWith=f"loudsync-tui join {service.give_out}",
            fingerprint=service.fingerprint,
            pin=generated_pin,
            # The session clock minus this process's monotonic clock (µs): what a guest
            # on this machine should estimate, the truth its error is measured against.
            sessionClockOffsetUs=-service.core.started_us,
        )
    else:
        pin_part = f"; PIN: {generated_pin}" if generated_pin else ""
        stdout.print(
            f"session {service.session_id} listening on {service.url} "
            f"(join with: loudsync-tui join {service.give_out}{pin_part})"
        )
    if service.fingerprint:
        store.log_event(f"Fingerprint (compare aloud): {readable(service.fingerprint)}")
        store.log_event(f"Code guests compare: {comparison_code(service.fingerprint)}")
    else:
        store.log_event("Serving unencrypted ws:// (--no-tls)", "warning")
    if service.player is not None and remember_in is not None:
        directory = remember_in
        service.player.on_settings = lambda settings: remembered.save(directory, settings)
    on_stop_signals(service.stop)
    tasks = TaskOwner("headless host")
    if as_json:
        tasks.spawn(
            report_sync(lambda: service.player.report() if service.player else None),
            name="sync-reports",
        )
    if commands:
        tasks.spawn(read_commands(service), name="commands")
    await service.wait_closed()
    await tasks.aclose()
    return 0


def run_host(args: argparse.Namespace) -> int:
    try:
        identity, name = identity_from(args)
    except OSError as exc:
        return fail(f"cannot use the config directory: {exc}")
    if args.heartbeat_timeout <= args.heartbeat_interval:
        return fail("--heartbeat-timeout must be longer than --heartbeat-interval", 2)
    config = host_config_from_args(args, identity.device_id, name)
    directory = config_dir(getattr(args, "config_dir", None))
    if not config.session_name:
        config = replace(config, session_name=f"{name}'s session")
    return asyncio.run(
        serve_headless(
            config,
            as_json=args.json,
            playback=playback_config_from_args(args),
            output=output_config_from_args(args, remembered.load(directory)),
            commands=args.commands,
            remember_in=directory,
        )
    )
