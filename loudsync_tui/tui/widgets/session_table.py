"""The Browse screen's table of sessions found on the LAN."""

from __future__ import annotations

from collections.abc import Mapping

from loudsync_tui.store import DiscoveredSession, rivals
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
        contested = {s.key for claims in rivals(sessions).values() for s in claims}
        self.reconcile(
            {key: format.session_cells(s, key in contested) for key, s in sessions.items()}
        )
