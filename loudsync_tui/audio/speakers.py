"""Opening this member's speakers: the same for the app and the headless modes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from loudsync_tui.audio import remembered
from loudsync_tui.audio.player import Player
from loudsync_tui.config import OutputConfig, OutputSettings
from loudsync_tui.store import AppStore


async def open_speakers(
    output: OutputConfig | None, store: AppStore, remember_in: Path | None = None
) -> Player | None:
    """This member's player, or None (and the config then asks for no audio): with
    `--no-audio`, or when there is no sound here, said in one line."""
    if output is None or not output.enabled:
        store.playback_silent("no sound here (--no-audio): this member is a remote")
        return None
    player = Player.of(output)
    if remember_in is not None:
        player.on_settings = lambda settings: remembered.save(remember_in, settings)
        remembered.save(remember_in, OutputSettings(output.volume, output.latency_offset_ms))
    problem = await asyncio.to_thread(player.start)  # opening a device can take a while
    if problem is not None:
        store.log_event(f"No sound on this machine ({problem}); joining as a remote", "warning")
        store.playback_silent(f"no sound here: {problem}")
        return None
    store.playback_output(player.device_name or "default output")
    return player
