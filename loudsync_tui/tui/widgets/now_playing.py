"""Now Playing: the track, whether it plays, how far it is, and how it reaches the speakers.

The position is worked out from the epoch and the session clock, so nothing needs to
tell the panel that time passes: a timer redraws the progress line alone, at most four
times a second while music plays and only when its text changed, without a layout pass
(the app runs over SSH: `python -m benchmarks.app_playing` measures what it writes).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.epoch import RATE
from loudsync_tui.store import PlaybackState
from loudsync_tui.tui import format

REDRAW_PERIOD_S = 0.25


class _Line(Static):
    """One line of the panel, redrawn only when its text changes."""

    def __init__(self, id: str) -> None:
        super().__init__(id=id)
        self.text: Text | None = None

    def show(self, text: Text) -> None:
        if text == self.text:
            return
        resized = self.text is None or bool(text) != bool(self.text)
        self.text = text
        self.display = bool(text)
        text.no_wrap = True
        text.overflow = "ellipsis"
        self.update(text, layout=resized)


class NowPlayingPanel(Vertical):
    def __init__(self, *, host: bool, local_us: Callable[[], float], id: str | None = None) -> None:
        super().__init__(id=id)
        self._host = host
        self._local_us = local_us
        self._playback = PlaybackState()
        self._clock: ClockEstimate | None = None
        self._note = Text()

    def compose(self) -> ComposeResult:
        for name in ("title", "progress", "details", "note"):
            yield _Line(id=f"playing-{name}")

    def on_mount(self) -> None:
        self.set_interval(REDRAW_PERIOD_S, self._tick)
        self._draw()

    def show(
        self, playback: PlaybackState, clock: ClockEstimate | None, note: Text | None = None
    ) -> None:
        """`clock` maps this machine's time to the session's; `note`, a last line (a
        guest's own speakers)."""
        self._playback, self._clock = playback, clock
        self._note = note or Text()
        if self.is_mounted:
            self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _tick(self) -> None:
        epoch = self._playback.epoch
        if epoch is not None and epoch.playing and not self._playback.ended:
            self._line("progress").show(self._progress())

    def _line(self, name: str) -> _Line:
        return self.query_one(f"#playing-{name}", _Line)

    def position_ms(self) -> float | None:
        epoch, clock = self._playback.epoch, self._clock
        if epoch is None:
            return None
        if not epoch.playing or clock is None:
            return epoch.k0 * 1000 / RATE
        session = clock.session_us(self._local_us())
        if session < epoch.t0_us:  # announced, not started yet: where it will start
            return epoch.k0 * 1000 / RATE
        return max(0.0, epoch.sample_at(session) * 1000 / RATE)

    def _progress(self) -> Text:
        if self._playback.track is None:
            return Text()
        width = max(20, self.content_size.width or 78)
        return format.progress(self._playback, self.position_ms(), width)

    def _draw(self) -> None:
        playback = self._playback
        if playback.track is None:
            empty = (
                "Nothing playing. Press o to add music or this machine's sound."
                if self._host
                else "The host plays nothing yet."
            )
            title = Text(empty, style="dim")
        else:
            title = format.track_title(playback.track)
        self._line("title").show(title)
        self._line("progress").show(self._progress())
        self._line("details").show(format.playback_details(playback, host=self._host))
        self._line("note").show(self._note)

    def text(self) -> str:
        """What the panel shows, line by line (for tests and the curious)."""
        lines = (line.text for line in self.query(_Line))
        return "\n".join(line.plain for line in lines if line)
