"""Whether to trust a host's certificate: a first-seen host, or one whose identity changed.

A first-seen host is routine (compare the fingerprint with the host's screen); a changed
one may be an impostor, so that dialog is loud and Enter means No.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from loudsync_tui.tui import format


class TrustDialog(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Trust"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Back", show=False),
        Binding("enter", "answer(False)", "No", show=False, priority=True),
    ]

    def __init__(self, question: str, *, changed: bool, can_trust: bool = True) -> None:
        """`can_trust` False: nothing to accept (a TLS host answering plain); only No."""
        super().__init__(classes="dialog-screen")
        self.question = question
        self.changed = changed
        self.can_trust = can_trust

    def compose(self) -> ComposeResult:
        if self.changed:
            title = "[b]DANGER: this host's identity has changed[/b]"
            detail = (
                "Either the host made a new certificate, or another machine pretends to be "
                "it. Trust it only if the host reads out every group the same."
            )
        else:
            title = "New host: check its fingerprint"
            detail = (
                "Ask the host to read out the fingerprint on their screen. Trust it only "
                "if it matches; it is then remembered for this host."
            )
        if not self.can_trust:
            keys = "[b]n[/b] / [b]Esc[/b] back to Browse"
        elif self.changed:
            keys = "[b]y[/b] trust the new fingerprint    [b]n[/b] / [b]Enter[/b] / [b]Esc[/b] no"
        else:
            keys = "[b]y[/b] it matches, join    [b]n[/b] / [b]Esc[/b] no"
        with Vertical(classes="dialog danger" if self.changed else "dialog"):
            yield Static(title, classes="dialog-title")
            yield Static(format.with_fingerprints(self.question), id="trust-question")
            yield Static(detail, classes="dialog-detail")
            yield Static(keys, classes="dialog-keys")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "answer" and parameters == (True,):
            return self.can_trust
        return True

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes and self.can_trust)
