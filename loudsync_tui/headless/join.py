"""`loudsync-tui join ADDRESS --headless`: join with no screen, logging to stderr.

Exit status: 0 after leaving or when the host closed the session, 3 when kicked,
2 when the join was refused (a missing or wrong PIN included), 4 when the host's
identity could not be verified (first seen, or changed), 1 when the host could not be
reached or the link was lost and every reconnect attempt failed.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from pathlib import Path

from loudsync_tui.audio import remembered
from loudsync_tui.audio.speakers import open_speakers
from loudsync_tui.config import (
    GuestConfig,
    OutputConfig,
    guest_config_from_args,
    output_config_from_args,
)
from loudsync_tui.core.latency import latency_changed
from loudsync_tui.headless.console import (
    emit,
    emit_log,
    fail,
    identity_from,
    on_stop_signals,
    print_log,
    stderr,
)
from loudsync_tui.headless.playback_events import report_sync, watch_playback
from loudsync_tui.identity import config_dir
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.store import AppStore, ConnectionState, GuestState

EXIT_CODES = {
    "left": 0,
    "closed": 0,
    "kicked": 3,
    "refused": 2,
    "pin": 2,
    "failed": 1,
    "untrusted": 4,
}
TRUST_HINT = (
    "To go on, compare the code (the fingerprint's first four groups) with the one on the "
    "host's screen, then run again with --fingerprint FP (or --trust-new for a host met for "
    "the first time, --replace-pin --fingerprint FP for one whose fingerprint changed)."
)


CLOCK_REPORT_INTERVAL = 1.0
"""`--json` reports the session clock this often (seconds) once it has an estimate."""


async def join_headless(
    config: GuestConfig,
    *,
    as_json: bool = False,
    output: OutputConfig | None = None,
    remember_in: Path | None = None,
) -> int:
    store = AppStore()
    stop_printing = emit_log(store) if as_json else print_log(store)
    watch_playback(store, as_json=as_json)
    player = await open_speakers(output, store, remember_in)
    config = replace(config, audio=player is not None)
    service = GuestService(config, store, player=player)
    failed = asyncio.Event()
    shown_latency: list[float | None] = [None]

    def watch(new: GuestState | None, old: GuestState | None) -> None:
        if new is None:
            return
        if old is None or new.connection is not old.connection:
            if as_json:
                emit("state", state=new.connection.value, attempt=new.attempt)
            elif new.connection is ConnectionState.RECONNECTING:
                stderr.log(
                    f"reconnecting, attempt {new.attempt}/{new.max_attempts}", style="yellow"
                )
            if new.connection is ConnectionState.FAILED:
                failed.set()
        if new.latency is not None and latency_changed(shown_latency[0], new.latency):
            shown_latency[0] = new.latency
            if as_json:
                emit("latency", ms=round(new.latency, 3))
            else:
                stderr.log(f"latency {new.latency:.1f} ms", style="dim")

    store.subscribe(watch, selector=lambda s: s.guest)
    on_stop_signals(service.leave)
    service.start()
    tasks = TaskOwner("headless join")
    if as_json:
        tasks.spawn(_report_clock(service), name="clock-reports")
        if player is not None:
            tasks.spawn(report_sync(player.report), name="sync-reports")
    ended = tasks.spawn(service.wait_ended(), name="ended")
    gave_up = tasks.spawn(failed.wait(), name="gave-up")
    await asyncio.wait({ended, gave_up}, return_when=asyncio.FIRST_COMPLETED)
    if gave_up.done() and not ended.done():
        guest = store.get().guest
        why = guest.ended if guest and guest.ended else "could not connect"
        stop_printing()  # what follows is tidying up, not news: "You left" would mislead
        service.leave()
        await service.aclose()
        await tasks.aclose()
        if player is not None:
            player.close()
        if as_json:
            emit("ended", code="failed", reason=why)
        return fail(why, 1)
    end = ended.result()
    await service.aclose()
    await tasks.aclose()
    if player is not None:
        player.close()
    if as_json:
        emit("ended", code=end.code, reason=end.reason)
    if end.code == "untrusted":
        stderr.print(TRUST_HINT)
    return EXIT_CODES[end.code]


async def _report_clock(service: GuestService) -> None:
    """`{"event": "clock", ...}` every second once the guest has an estimate; `offsetUs`
    is the session clock minus this process's `time.monotonic_ns() // 1000`."""
    while True:
        await asyncio.sleep(CLOCK_REPORT_INTERVAL)
        core = service.core
        estimate = core.clock_estimator.estimate() if core is not None else None
        if core is None or estimate is None:
            continue
        now = service.clock.monotonic_us()
        session = core.clock_estimator.session_time(now)
        if session is None:
            continue
        emit(
            "clock",
            offsetUs=session - now,
            uncertaintyUs=round(estimate.uncertainty_us, 1),
            rttUs=estimate.rtt_us,
            skewPpm=round(estimate.skew_ppm, 3),
            samples=estimate.samples,
        )


def run_join(args: argparse.Namespace) -> int:
    try:
        identity, name = identity_from(args)
    except OSError as exc:
        return fail(f"cannot use the config directory: {exc}")
    config = guest_config_from_args(args, identity.device_id, name, identity.key.private)
    directory = config_dir(getattr(args, "config_dir", None))
    output = output_config_from_args(args, remembered.load(directory))
    return asyncio.run(
        join_headless(config, as_json=args.json, output=output, remember_in=directory)
    )
