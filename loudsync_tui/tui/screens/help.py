"""`?`: every key of the screen underneath, including the ones the Footer has no room for."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Static

_NOISE = {"focus_next", "focus_previous", "copy_text"}


def key_rows(screen: Screen[object]) -> list[tuple[str, str]]:
    """(keys, description) of the app's keys active on `screen`, keys joined per description.

    Only the screen's and the app's own bindings: a focused widget's (DataTable's page
    and cursor keys) are its internals, summed up in one line where a table is shown.
    """
    own: dict[str, list[str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.system or not binding.description or binding.action.rsplit(".", 1)[-1] in _NOISE:
            continue
        if active.node not in (screen, screen.app):
            continue
        if screen.check_action(binding.action, ()) is False:
            continue  # a key that does nothing here now is not listed
        own.setdefault(binding.description, []).append(screen.app.get_key_display(binding))
    # The screen's own keys first, then the app's (q, ?) wherever a key of theirs sits
    # among the screen's (ctrl+c overrides the Screen's copy key); within a row shortest
    # first: "q / ^c / ^q", the key to remember before its control-key twins.
    app_descriptions = {
        a.binding.description for a in screen.active_bindings.values() if a.node is screen.app
    }
    # The screen's keys in the order it declares them (priority keys would come first).
    declared = {
        b.description: n
        for n, b in enumerate(getattr(screen, "BINDINGS", ()))
        if isinstance(b, Binding)
    }
    ordered = sorted(
        own.items(), key=lambda item: (item[0] in app_descriptions, declared.get(item[0], 999))
    )
    rows = [(" / ".join(sorted(keys, key=len)), what) for what, keys in ordered]
    if screen.query(DataTable):
        rows.append(("↑ / ↓", "Move through the table"))
    return rows


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close"),
    ]

    def __init__(self, title: str, rows: list[tuple[str, str]]) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for keys, description in self.rows:
            table.add_row(keys, description)
        with VerticalScroll(classes="dialog help"):
            yield Static(Text(f"Keys: {self.title_text}"), classes="dialog-title")
            yield Static(table, id="help-keys")
            yield Static("Esc or ? closes this help.", classes="dialog-detail")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
