"""Browse: the sessions found on the LAN, live; the start screen."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from loudsync_tui.store import AppState, DiscoveryState, join_refusal, rivals, where
from loudsync_tui.text import printable
from loudsync_tui.tui.screens.base import StoreScreen
from loudsync_tui.tui.widgets.session_table import SessionTable
from loudsync_tui.tui.widgets.title_bar import TitleBar

EMPTY_TEXT = (
    "Searching for sessions on this network…\n\n"
    "Nothing here? Press [b]a[/b] to join by address (the host's screen shows it),\n"
    "or [b]h[/b] to host a session yourself."
)
NO_DISCOVERY_TEXT = (
    "Discovery is unavailable: {error}\n\n"
    "Press [b]a[/b] to join by address (the host's screen shows it), "
    "or [b]h[/b] to host a session."
)


class BrowseScreen(StoreScreen):
    BINDINGS = [
        Binding("enter", "join_selected", "Join", priority=True),
        Binding("h", "host", "Host"),
        Binding("a", "join_address", "Join address"),
        Binding("r", "rescan", "Rescan"),
        Binding("j", "cursor(1)", "Down", group=Binding.Group("Move", compact=True)),
        Binding("k", "cursor(-1)", "Up", group=Binding.Group("Move", compact=True)),
    ]

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Static("", id="browse-status", classes="info")
        yield Static("", id="browse-warning", classes="info")
        yield SessionTable(id="sessions")
        yield Static(EMPTY_TEXT, id="browse-empty", classes="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.set_heading("Sessions on this network")
        self.watch_store(lambda s: s.discovery, self._draw)

    def on_screen_resume(self) -> None:
        self.store.browse_watched(True)

    def on_screen_suspend(self) -> None:
        """Hosts are checked for an answer only while someone can see the marks."""
        self.store.browse_watched(False)

    def _draw(self, discovery: DiscoveryState) -> None:
        table = self.query_one(SessionTable)
        table.show(discovery.sessions)
        count = len(discovery.sessions)
        status = f"{count} session{'s' if count != 1 else ''} found"
        if discovery.error:
            status = f"Discovery unavailable: {discovery.error}"
        elif discovery.browsing:
            status += " · searching…"
        self.query_one("#browse-status", Static).update(status)
        warning = self.query_one("#browse-warning", Static)
        warning.update(Text("\n".join(_rival_warnings(discovery)), style="bold yellow"))
        warning.display = bool(rivals(discovery.sessions))
        empty = self.query_one("#browse-empty", Static)
        if discovery.error:
            empty.update(NO_DISCOVERY_TEXT.format(error=discovery.error))
        else:
            empty.update(EMPTY_TEXT)
        empty.display = count == 0
        table.display = count > 0
        if count and self.focused is None:
            table.focus()

    def action_cursor(self, step: int) -> None:
        table = self.query_one(SessionTable)
        table.move_cursor(row=table.cursor_row + step)

    def action_join_selected(self) -> None:
        key = self.query_one(SessionTable).selected_key
        state: AppState = self.store.get()
        session = state.discovery.sessions.get(key) if key is not None else None
        if session is None:
            self.notify("No session selected. Press a to join by address.", severity="warning")
            return
        if session.reachable is False:  # say so now rather than let a join time out
            self.notify(
                f"{printable(session.name)} at {printable(where(session))} is not answering: "
                "its host may have stopped without saying goodbye. Press r to search again.",
                title="Host not answering",
                severity="warning",
                markup=False,
            )
            return
        if (refusal := join_refusal(session)) is not None:
            self.notify(  # the name is whatever an mDNS record said: never markup
                f"Cannot join {printable(session.name)}: {printable(refusal)}",
                severity="warning",
                markup=False,
            )
            return
        if session.session_id in rivals(state.discovery.sessions):
            self.notify(
                "Another announcement claims this session: compare the code with the host's "
                "screen before trusting it.",
                title="Possible impostor",
                severity="warning",
            )
        self.loudsync.join_discovered(session)

    def action_host(self) -> None:
        self.loudsync.ask_to_host()

    def action_join_address(self) -> None:
        self.loudsync.ask_address()

    def action_rescan(self) -> None:
        self.loudsync.rescan()


def _rival_warnings(discovery: DiscoveryState) -> list[str]:
    """One line per session claimed from more than one place, with every address."""
    return [
        f"⚠ {len(claims)} announcements claim “{printable(claims[0].name)}” "
        f"({', '.join(printable(where(s)) for s in claims)}): one may be an impostor."
        for claims in rivals(discovery.sessions).values()
    ]
