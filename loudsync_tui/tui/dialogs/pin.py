"""The host's PIN: set one, generate one, or let anyone join again."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from loudsync_tui.security.pin import MIN_PIN_DIGITS, check_pin_format
from loudsync_tui.tui.dialogs.text_prompt import SubmitInput

OFF_WORDS = frozenset({"off", "none", "no"})
"""Typed instead of digits, these remove the PIN: a word works in every terminal, where a
control key might be taken by the terminal or the input field."""


@dataclass(frozen=True, slots=True)
class PinChoice:
    pin: str | None
    """The new PIN; "" asks the host for a generated one; None: no PIN."""


def pin_problem(text: str) -> str | None:
    """check_pin_format's reason as a sentence, or None when the PIN is usable."""
    problem = check_pin_format(text)
    return None if problem is None else f"{problem[0].upper()}{problem[1:]}."


class PinDialog(ModalScreen[PinChoice | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, current: str | None) -> None:
        super().__init__(classes="dialog-screen")
        self.current = current

    def compose(self) -> ComposeResult:
        title = "Change the PIN" if self.current else "Require a PIN to join"
        now = f"Now: PIN {self.current}" if self.current else "Now: anyone on the network can join"
        with Vertical(classes="dialog"):
            yield Static(title, classes="dialog-title")
            yield Static(now)
            yield SubmitInput(placeholder=f"{MIN_PIN_DIGITS}+ digits, or empty", id="pin-input")
            yield Static(
                "Enter sets it; empty generates one. Type [b]off[/b] to require no PIN. "
                "Members already in stay. Esc cancels.",
                id="pin-hint",
                classes="dialog-detail",
            )
        yield Footer()

    def action_submit(self) -> None:
        text = self.query_one(Input).value.strip()
        if text.lower() in OFF_WORDS:
            self.dismiss(PinChoice(None))
            return
        if text and (problem := pin_problem(text)):
            self.query_one("#pin-hint", Static).update(
                f"[b red]{problem}[/] Empty generates one; [b]off[/b] removes the PIN."
            )
            return
        self.dismiss(PinChoice(text))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)
