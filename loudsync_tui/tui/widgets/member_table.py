"""The member table shared by the host and guest screens."""

from __future__ import annotations

from collections.abc import Mapping

from loudsync_tui.store import Member
from loudsync_tui.tui import format
from loudsync_tui.tui.widgets.keyed_table import Cell, KeyedTable


class MemberTable(KeyedTable):
    COLUMNS = (
        ("name", "Name"),
        ("status", "Status"),
        ("latency", "Latency ms"),
        ("clock", "Clock ms"),
        ("joined", "Joined"),
        ("device", "Device"),
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._cells: dict[str, tuple[Member, str | None, tuple[Cell, ...]]] = {}

    def show(self, members: Mapping[str, Member], own_id: str | None) -> None:
        """Formats only members whose (immutable) record changed since the last call."""
        rows: dict[str, tuple[Cell, ...]] = {}
        cache = self._cells
        for m in members.values():
            seen = cache.get(m.id)
            if seen is not None and seen[0] is m and seen[1] == own_id:
                rows[m.id] = seen[2]
            else:
                rows[m.id] = format.member_cells(m, own_id)
        self._cells = {k: (members[k], own_id, cells) for k, cells in rows.items()}
        self.reconcile(rows)
