"""The member table shared by the host and guest screens."""

from __future__ import annotations

from collections.abc import Mapping

from loudsync_tui.store import Member
from loudsync_tui.tui import format
from loudsync_tui.tui.widgets.keyed_table import Cell, KeyedTable


class MemberTable(KeyedTable):
    COLUMNS: tuple[tuple[str, str], ...] = (
        ("name", "Name"),
        ("status", "Status"),
        ("sync", "Sync ms"),
        ("volume", "Volume"),
        ("offset", "Offset ms"),
        ("underruns", "Underruns"),
        ("latency", "Latency ms"),
        ("clock", "Clock ms"),
        ("joined", "Joined"),
        ("device", "Device"),
    )

    SOUND_COLUMNS = frozenset({"sync", "underruns", "volume", "offset"})
    """What only the host learns (each member reports it to the host alone)."""

    def __init__(self, *, id: str | None = None, sound: bool = True) -> None:
        if not sound:
            self.COLUMNS = tuple(c for c in type(self).COLUMNS if c[0] not in self.SOUND_COLUMNS)
        self._keep = [n for n, c in enumerate(type(self).COLUMNS) if c in self.COLUMNS]
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
                cells = format.member_cells(m, own_id)
                rows[m.id] = tuple(cells[n] for n in self._keep)
        self._cells = {k: (members[k], own_id, cells) for k, cells in rows.items()}
        self.reconcile(rows)
