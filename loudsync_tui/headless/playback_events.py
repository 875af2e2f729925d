"""What the headless modes say about playback: a line (or a JSON `playback` event) on
every change of track or epoch, and with `--json` a `sync` event once a second."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from loudsync_tui.core.epoch import RATE
from loudsync_tui.headless.console import emit, stderr
from loudsync_tui.protocol import SyncReport
from loudsync_tui.store import AppStore
from loudsync_tui.store.state import PlaybackState
from loudsync_tui.store.store import Unsubscribe

SYNC_REPORT_INTERVAL = 1.0


def watch_playback(store: AppStore, *, as_json: bool) -> Unsubscribe:
    def changed(new: PlaybackState, old: PlaybackState) -> None:
        if (new.track, new.epoch, new.ended) == (old.track, old.epoch, old.ended):
            if new.output != old.output and as_json:
                emit("playback", **_fields(new))
            return
        if as_json:
            emit("playback", **_fields(new))
        elif new.epoch is not None and new.epoch != old.epoch:
            title = new.track.title if new.track is not None else "?"
            verb = "playing" if new.epoch.playing else "paused"
            at = new.epoch.k0 / RATE
            stderr.log(f"{verb} {title!r} from {at:.1f} s", style="dim")

    return store.subscribe(changed, selector=lambda s: s.playback)


def _fields(p: PlaybackState) -> dict[str, object]:
    track = p.track
    epoch = p.epoch
    return {
        "state": _state(p),
        "track": None
        if track is None
        else {
            "id": track.track_id,
            "title": track.title,
            "artist": track.artist,
            "album": track.album,
            "durationMs": track.duration_ms,
            "position": track.position,
            "queueLength": track.queue_length,
        },
        "epoch": None if epoch is None else epoch.number,
        "atUs": None if epoch is None else epoch.t0_us,
        "sample": None if epoch is None else epoch.k0,
        "output": p.output,
    }


def _state(p: PlaybackState) -> str:
    if p.ended:
        return "ended"
    if p.epoch is None:
        return "stopped"
    return "playing" if p.epoch.playing else "paused"


async def report_sync(report: Callable[[], SyncReport | None]) -> None:
    """`{"event": "sync", ...}` once a second while this machine plays."""
    while True:
        await asyncio.sleep(SYNC_REPORT_INTERVAL)
        figures = report()
        if figures is not None:
            emit(
                "sync",
                errorUs=figures.error_us,
                underruns=figures.underruns,
                bufferMs=figures.buffer_ms,
                rateRatio=figures.rate_ratio,
            )
