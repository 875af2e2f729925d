"""The kick confirmation: kick, kick and ban the address too, or cancel."""

from __future__ import annotations

from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from loudsync_tui.text import printable

KickChoice = Literal["kick", "ban-address"]


class KickDialog(ModalScreen[KickChoice | None]):
    """A kick always bans the device id; banning the address is a separate choice because
    it also keeps out anyone else behind it (a shared machine, a NAT)."""

    BINDINGS = [
        Binding("y", "answer('kick')", "Kick"),
        Binding("a", "answer('ban-address')", "Kick + ban address"),
        Binding("n", "cancel", "Cancel"),
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    def __init__(self, name: str) -> None:
        super().__init__(classes="dialog-screen")
        self.member_name = name

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # The name is the guest's own choice: literal text, never markup.
            yield Static(Text(f"Kick {printable(self.member_name)}?"), classes="dialog-title")
            yield Static(
                "They leave the session and their device cannot rejoin it. Banning the "
                "address also keeps out any device from there.",
                classes="dialog-detail",
            )
            yield Static(
                "[b]y[/b] kick    [b]a[/b] kick and ban the address    [b]n[/b] / [b]Esc[/b] no",
                classes="dialog-keys",
            )
        yield Footer()

    def action_answer(self, choice: KickChoice) -> None:
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
