"""The member table shared by the host and guest screens."""

from __future__ import annotations

from collections.abc import Mapping

from loudsync_tui.store import Member
from loudsync_tui.tui import format
from loudsync_tui.tui.widgets.keyed_table import KeyedTable


class MemberTable(KeyedTable):
    COLUMNS = (
        ("name", "Name"),
        ("status", "Status"),
        ("latency", "Latency ms"),
        ("joined", "Joined"),
        ("device", "Device"),
    )

    def show(self, members: Mapping[str, Member], own_id: str | None) -> None:
        self.reconcile({m.id: format.member_cells(m, own_id) for m in members.values()})
