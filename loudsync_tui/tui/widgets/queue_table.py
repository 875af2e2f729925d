"""The host's queue, the current track marked."""

from __future__ import annotations

from rich.text import Text

from loudsync_tui.store import PlaybackState
from loudsync_tui.text import printable
from loudsync_tui.tui import format
from loudsync_tui.tui.widgets.keyed_table import Cell, KeyedTable


class QueueTable(KeyedTable):
    COLUMNS = (
        ("at", "#"),
        ("title", "Queue"),
        ("artist", "Artist"),
        ("time", "Time"),
    )

    @property
    def selected_index(self) -> int | None:
        key = self.selected_key
        return None if key is None else int(key)

    def show(self, playback: PlaybackState) -> None:
        rows: dict[str, tuple[Cell, ...]] = {}
        for n, track in enumerate(playback.queue):
            current = n == playback.queue_index and playback.track is not None
            style = "bold" if current else ""
            rows[str(n)] = (
                Text("▶" if current else str(n + 1), style=style, justify="right"),
                Text(printable(track.title), style=style),
                Text(printable(track.artist or "")),
                Text(format.duration(track.duration_ms), justify="right"),
            )
        self.reconcile(rows)
