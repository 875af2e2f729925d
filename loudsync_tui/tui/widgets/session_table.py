"""The Browse screen's table of sessions found on the LAN."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text

from loudsync_tui.store import DiscoveredSession, rivals
from loudsync_tui.text import printable
from loudsync_tui.tui import format
from loudsync_tui.tui.widgets.keyed_table import Cell, KeyedTable

MIN_NAME = 10
"""A session name is never cut shorter than this (nor a host name shorter than MIN_HOST)."""
MIN_HOST = 6
SPARE = 2 + 2 * 5
"""Columns the table itself takes: a vertical scrollbar, and one cell of padding on each
side of each of the five columns."""


class SessionTable(KeyedTable):
    COLUMNS = (
        ("name", "Session"),
        ("host", "Host"),
        ("members", "Members"),
        ("address", "Address"),
        ("note", "Join"),
    )

    _shown: Mapping[str, DiscoveredSession] | None = None

    def on_resize(self) -> None:
        """A wider window gives long names more room (columns never shrink, see KeyedTable)."""
        if self._shown is not None:
            self.show(self._shown)

    def show(self, sessions: Mapping[str, DiscoveredSession]) -> None:
        self._shown = sessions
        contested = {s.key for claims in rivals(sessions).values() for s in claims}
        rows = {key: format.session_cells(s, key in contested) for key, s in sessions.items()}
        self.reconcile(self.fit(rows, self.app.size.width))
        self.fit_columns()  # a few rows: cheap, and a grown note must not push Join away

    def fit(self, rows: dict[str, tuple[Cell, ...]], width: int) -> dict[str, tuple[Cell, ...]]:
        """Names and host names cut with an ellipsis so Members, Address and Join always
        show in `width` columns: a name is whatever a peer announced, up to 64 characters."""
        if not rows:
            return rows
        fixed = sum(
            max(len(label), *(_width(cells[n]) for cells in rows.values()))
            for n, (_, label) in enumerate(self.COLUMNS)
            if n >= 2
        )
        room = width - fixed - SPARE
        name = max(_width(cells[0]) for cells in rows.values())
        host = max(_width(cells[1]) for cells in rows.values())
        if name + host <= room:
            return rows
        host = min(host, max(MIN_HOST, room // 3))
        name = max(MIN_NAME, room - host)
        return {
            key: (_clip(cells[0], name), _clip(cells[1], host), *cells[2:])
            for key, cells in rows.items()
        }


def _width(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(cell)


def _clip(cell: Cell, width: int) -> Cell:
    if _width(cell) <= width:
        return cell
    text = cell.copy() if isinstance(cell, Text) else Text(printable(cell))
    text.truncate(width, overflow="ellipsis")
    return text
