"""The host's bans (device ids and addresses), live from the store; the selected one can
be lifted, so a mistaken kick is not final for the rest of the session."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from loudsync_tui.store import AppState, AppStore, Unsubscribe
from loudsync_tui.text import printable
from loudsync_tui.tui.widgets.keyed_table import Cell, KeyedTable

if TYPE_CHECKING:
    from loudsync_tui.tui.app import LoudsyncApp

Bans = tuple[frozenset[str], frozenset[str], Mapping[str, str]]


class BanTable(KeyedTable):
    COLUMNS = (("kind", "Banned"), ("key", "Device id / address"), ("who", "Who"))


def _bans(state: AppState) -> Bans:
    hosting = state.hosting
    if hosting is None:
        return frozenset(), frozenset(), {}
    return hosting.banned, hosting.banned_addresses, hosting.ban_names


class BansDialog(ModalScreen[None]):
    BINDINGS = [
        Binding("l", "lift", "Lift ban"),
        Binding("enter", "lift", "Lift ban", show=False, priority=True),
        Binding("escape", "close", "Close"),
        Binding("b", "close", "Close", show=False),
    ]

    def __init__(self, store: AppStore) -> None:
        super().__init__(classes="dialog-screen")
        self.store = store
        self._unsubscribe: Unsubscribe | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog bans"):
            yield Static("Bans in this session", classes="dialog-title")
            yield BanTable(id="bans")
            yield Static("Nobody is banned.", id="bans-empty")
            yield Static(
                "[b]l[/b] / [b]Enter[/b] lift the selected ban    [b]Esc[/b] close",
                classes="dialog-keys",
            )
        yield Footer()

    def on_mount(self) -> None:
        self._unsubscribe = self.store.subscribe(lambda new, _old: self._draw(new), _bans)
        self._draw(_bans(self.store.get()))
        self.query_one(BanTable).focus()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _draw(self, bans: Bans) -> None:
        if not self.is_attached:
            return
        devices, addresses, names = bans
        rows: dict[str, tuple[Cell, ...]] = {}
        for device in sorted(devices):
            rows[device] = ("device", device, names.get(device, "—"))
        for address in sorted(addresses):
            who = (
                f"any device there ({names[address]}'s)" if address in names else "any device there"
            )
            rows[address] = (Text("address", style="bold"), address, who)
        table = self.query_one(BanTable)
        table.reconcile(rows)
        table.display = bool(rows)
        self.query_one("#bans-empty").display = not rows

    def action_lift(self) -> None:
        key = self.query_one(BanTable).selected_key
        if key is None:
            self.notify("Nobody is banned.")
            return
        who = printable(_bans(self.store.get())[2].get(key, key))  # a guest's name: never markup
        cast("LoudsyncApp", self.app).lift_ban(key)
        self.notify(f"Ban on {who} lifted: they can join again.", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
