"""The live event log: appends only the entries it has not drawn yet."""

from __future__ import annotations

from textual.widgets import RichLog

from loudsync_tui.store import LogEntry
from loudsync_tui.store.state import LOG_LIMIT
from loudsync_tui.tui import format


class EventLog(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=LOG_LIMIT, wrap=False, markup=False, auto_scroll=True)
        self._last: LogEntry | None = None

    def show(self, entries: tuple[LogEntry, ...]) -> None:
        start = 0
        if self._last is not None:
            try:
                start = len(entries) - entries[::-1].index(self._last)
            except ValueError:
                self.clear()
        for entry in entries[start:]:
            self.write(format.log_line(entry))
        if entries:
            self._last = entries[-1]
