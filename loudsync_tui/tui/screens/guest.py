"""Guest: the joined session, the link to its host, whether it is private, who is there."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from loudsync_tui.store import ConnectionState, GuestState
from loudsync_tui.text import printable
from loudsync_tui.tui import format
from loudsync_tui.tui.screens.base import StoreScreen
from loudsync_tui.tui.widgets.event_log import EventLog
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.title_bar import TitleBar


class GuestScreen(StoreScreen):
    BINDINGS = [
        Binding("l", "leave", "Leave"),
        Binding("r", "retry", "Retry"),
    ]

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Static("", id="guest-info", classes="info")
        yield Static("", id="guest-link", classes="info")
        yield Static("", id="guest-security", classes="info")
        yield MemberTable(id="members")
        yield EventLog(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.set_heading("Joining")
        self.watch_store(lambda s: s.guest, self._draw)
        self.watch_store(lambda s: s.log, self.query_one(EventLog).show)
        self.query_one(MemberTable).focus()
        self.set_interval(0.5, self._tick)

    def _draw(self, guest: GuestState | None) -> None:
        if guest is None:
            return
        self.query_one("#guest-info", Static).update(self._info(guest))
        self._draw_link(guest)
        self.query_one("#guest-security", Static).update(format.guest_security(guest))
        self.query_one(MemberTable).show(guest.members, guest.client_id)
        self.refresh_bindings()

    def _info(self, guest: GuestState) -> Text:
        """The heading and the line under it: "In" a session only once the host welcomed
        us; before that, the address being joined (and why it failed, if it did)."""
        address = printable(guest.address)
        if guest.session_name is None:
            failed = guest.connection is ConnectionState.FAILED
            self.set_heading(f"Could not join {address}" if failed else f"Joining {address}…")
            if failed and guest.ended:
                return Text(printable(guest.ended), style="bold red")
            return Text.assemble("Joining ", (address, "bold"), "…")
        name = printable(guest.session_name)
        self.set_heading(f"In {name}")
        count = f"   members {len(guest.members)}" if guest.members else ""
        if guest.max_members:
            count += f"/{guest.max_members}"
        # The names are the host's choice: assembled as literal text, never parsed as markup.
        info = Text(name, style="bold")
        if guest.host_name:
            info.append(" hosted by ")
            info.append(printable(guest.host_name), style="bold")
        info.append(f" at {address}{count}")
        return info

    def _draw_link(self, guest: GuestState) -> None:
        line = format.connection(guest, self.loudsync.monotonic())
        line = Text("link: ", style="dim") + line
        if guest.connection is ConnectionState.CONNECTED and guest.latency is not None:
            line.append("   your latency: ", style="dim")
            line.append(format.latency(guest.latency).plain + " ms")
        if guest.connection is ConnectionState.CONNECTED and guest.clock is not None:
            line.append("   session clock: ", style="dim")
            line.append_text(format.clock_accuracy(guest.clock.uncertainty_us))
            line.append(" ms")
        self.query_one("#guest-link", Static).update(line)

    def _tick(self) -> None:
        """Keeps the reconnect countdown moving between store updates."""
        guest = self.store.get().guest
        if guest is not None and guest.connection is ConnectionState.RECONNECTING:
            self._draw_link(guest)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            guest = self.store.get().guest
            # Only offered once the link has failed: a key that does nothing is not shown.
            return bool(guest and guest.connection is ConnectionState.FAILED)
        return True

    def action_leave(self) -> None:
        self.loudsync.leave()

    def action_retry(self) -> None:
        self.loudsync.retry()
