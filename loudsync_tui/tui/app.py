"""The LOUDSYNC terminal app."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class LoudsyncApp(App[None]):
    TITLE = "LOUDSYNC"
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Searching for sessions on this network…", id="status")
        yield Footer()


def run_app(args: object) -> int:
    del args
    LoudsyncApp().run()
    return 0
