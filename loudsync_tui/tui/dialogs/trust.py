"""Whether to trust a host's certificate: a first-seen host, or one whose identity changed.

A first-seen host is routine: the dialog shows its comparison code large, so people
compare one short thing aloud with the host's screen. A changed one may be an impostor,
so that dialog is loud and Enter means No.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Digits, Footer, Static

from loudsync_tui.security.certificate import comparison_code
from loudsync_tui.tui import format


class TrustDialog(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Trust"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Back", show=False),
        Binding("enter", "answer(False)", "No", show=False, priority=True),
    ]

    def __init__(
        self,
        question: str,
        *,
        changed: bool,
        can_trust: bool = True,
        fingerprint: str | None = None,
    ) -> None:
        """`can_trust` False: nothing to accept (plain where TLS was expected, or a
        certificate that differs from the one advertised or given); only No.
        `fingerprint`: the certificate received, whose code is shown large."""
        super().__init__(classes="dialog-screen")
        self.question = question
        self.changed = changed
        self.can_trust = can_trust
        self.fingerprint = fingerprint

    def compose(self) -> ComposeResult:
        if self.changed and not self.can_trust:
            title = "[b]REFUSED: possible impostor[/b]"
            detail = "Nothing was sent to it. Check the host's screen and its address."
        elif self.changed:
            title = "[b]DANGER: this host's identity has changed[/b]"
            detail = "Trust it only if the host reads out this code the same."
        else:
            title = "New host: compare this code with the host's screen"
            detail = "Trust it only if it matches; it is then remembered for this host."
        if not self.can_trust:
            keys = "[b]n[/b] / [b]Esc[/b] back to Browse"
        elif self.changed:
            keys = "[b]y[/b] trust the new fingerprint    [b]n[/b] / [b]Enter[/b] / [b]Esc[/b] no"
        else:
            keys = "[b]y[/b] it matches, join    [b]n[/b] / [b]Esc[/b] no"
        with Vertical(classes="dialog danger" if self.changed else "dialog"):
            yield Static(title, classes="dialog-title")
            if self.fingerprint is not None and self.can_trust:
                yield Digits(comparison_code(self.fingerprint), id="trust-code")
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
