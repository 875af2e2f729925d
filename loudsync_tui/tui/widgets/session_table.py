"""The Browse screen's table of sessions found on the LAN."""

from __future__ import annotations

from collections.abc import Mapping

from loudsync_tui.store import DiscoveredSession
from loudsync_tui.tui import format
from loudsync_tui.tui.widgets.keyed_table import KeyedTable


class SessionTable(KeyedTable):
    COLUMNS = (
        ("name", "Session"),
        ("host", "Host"),
        ("members", "Members"),
        ("address", "Address"),
        ("note", "Join"),
    )

    def show(self, sessions: Mapping[str, DiscoveredSession]) -> None:
        self.reconcile({key: format.session_cells(s) for key, s in sessions.items()})
