"""A one-line input (session name, address to join); Enter submits, Escape cancels."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

Validator = Callable[[str], str | None]
"""Returns an error message, or None when the text is fine."""


class SubmitInput(Input):
    """An Input whose Enter is listed in the Footer as "OK".

    Enter must be the Input's own key, never a priority binding of the dialog: that would
    run before the Input had taken the keys typed before it in the same burst (a paste,
    an SSH link that batches keystrokes, `tmux send-keys 'text' Enter`). The Input's
    Submitted message comes after those keys, in order.
    """

    BINDINGS = [Binding("enter", "submit", "OK")]


class TextPrompt(ModalScreen[str | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self,
        title: str,
        *,
        value: str = "",
        placeholder: str = "",
        hint: str = "",
        validate: Validator | None = None,
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint
        self.validator = validate

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            # Titles name sessions ("PIN for <an mDNS name>"): literal text, never markup.
            yield Static(Text(self.title_text), classes="dialog-title")
            yield SubmitInput(value=self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static(Text(self.hint), id="prompt-hint", classes="dialog-detail")
        yield Footer()

    def action_submit(self) -> None:
        text = self.query_one(Input).value.strip()
        error = "Please type something." if not text else None
        if error is None and self.validator is not None:
            error = self.validator(text)
        if error is not None:
            # The error may quote what was typed ("'[/x]' is not a port number").
            self.query_one("#prompt-hint", Static).update(Text(error, style="bold red"))
            return
        self.dismiss(text)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_cancel(self) -> None:
        self.dismiss(None)


def check_address(text: str) -> str | None:
    """`HOST[:PORT]` or a ws:// URL; the port, if given, must be a number in range."""
    if text.startswith(("ws://", "wss://")):
        return None
    host, sep, port = text.rpartition(":")
    if not sep:
        return None if " " not in text else "An address has no spaces."
    if not host or " " in host:
        return "Use HOST[:PORT], for example 192.168.1.20:8080."
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"{port!r} is not a port number (1-65535)."
    return None


def number_check(low: float, high: float, what: str) -> Validator:
    """A validator for a number from `low` to `high`."""

    def check(text: str) -> str | None:
        try:
            value = float(text)
        except ValueError:
            return f"{text[:20]!r} is not a number."
        if not low <= value <= high:  # NaN fails this too
            return f"{what} must be {low:g} to {high:g}."
        return None

    return check
