"""Host: the session this app runs, its members, how it is protected and who is banned."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Digits, Footer, Static

from loudsync_tui.security.certificate import comparison_code
from loudsync_tui.store import HostingState
from loudsync_tui.text import printable
from loudsync_tui.tui import format
from loudsync_tui.tui.dialogs.bans import BansDialog
from loudsync_tui.tui.dialogs.confirm import ConfirmDialog
from loudsync_tui.tui.dialogs.kick import KickChoice, KickDialog
from loudsync_tui.tui.dialogs.pin import PinChoice, PinDialog
from loudsync_tui.tui.screens.base import StoreScreen
from loudsync_tui.tui.widgets.event_log import EventLog
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.title_bar import TitleBar

NARROW_BELOW = 72
"""Columns under which the code loses its label and the PIN gets a line of its own."""


class HostScreen(StoreScreen):
    """The header (address, code, fingerprint, PIN) is what guests need, so it always shows
    in full: the screen never scrolls (app.tcss), and the table and log share the rest."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-wide")]
    BINDINGS = [
        Binding("k", "kick", "Kick"),
        Binding("b", "bans", "Bans"),
        Binding("p", "pin", "PIN"),
        Binding("s", "stop", "Stop session"),
    ]

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Static("Starting the session…", id="host-info", classes="info")
        with Horizontal(id="host-code-row"):
            # Large, so guests compare one short thing aloud (the trust dialog shows it too).
            yield Static("code to\nread out", id="host-code-label")
            yield Digits("", id="host-code")
        yield Static("", id="host-security", classes="info")
        yield MemberTable(id="members")
        yield EventLog(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.set_heading("Hosting")
        self.watch_store(lambda s: s.hosting, self._draw)
        self.watch_store(lambda s: s.log, self.query_one(EventLog).show)
        self.query_one(MemberTable).focus()

    def _draw(self, hosting: HostingState | None) -> None:
        if hosting is None:
            return
        self.set_heading(f"Hosting {hosting.session_name}")
        # A session name may hold brackets ("[/x] Party"): literal text, never markup.
        self.query_one("#host-info", Static).update(
            Text.assemble(
                (printable(hosting.session_name), "bold"),
                "   address to give out: ",
                (hosting.address, "bold"),
                f"   members {len(hosting.members)}/{hosting.max_members}",
            )
        )
        narrow = self.app.size.width < NARROW_BELOW
        self.query_one("#host-security", Static).update(
            format.host_security(hosting.fingerprint, hosting.pin, narrow=narrow)
        )
        if hosting.fingerprint is not None:
            self.query_one("#host-code", Digits).update(comparison_code(hosting.fingerprint))
        self.query_one("#host-code-row").display = hosting.fingerprint is not None
        self.query_one(MemberTable).show(hosting.members, hosting.host_id)

    def on_resize(self, _event: events.Resize) -> None:
        """The PIN's place depends on the width (see `format.host_security`)."""
        self._draw(self.store.get().hosting)

    def action_kick(self) -> None:
        hosting = self.store.get().hosting
        key = self.query_one(MemberTable).selected_key
        if hosting is None or key is None or key not in hosting.members:
            self.notify("Select a member to kick first.", severity="warning")
            return
        if key == hosting.host_id:
            self.notify("You cannot kick yourself; press s to stop the session.")
            return
        member = hosting.members[key]

        def answered(choice: KickChoice | None) -> None:
            if choice is not None:
                self.loudsync.kick(member.id, ban_address=choice == "ban-address")

        sharing = sum(
            1 for m in hosting.members.values() if member.address and m.address == member.address
        )
        self.app.push_screen(KickDialog(member.name, member.address, sharing), answered)

    def action_bans(self) -> None:
        self.app.push_screen(BansDialog(self.store))

    def action_pin(self) -> None:
        hosting = self.store.get().hosting
        if hosting is None:
            return
        if hosting.fingerprint is None:
            self.notify(
                "A PIN needs TLS: it is only sent encrypted. Host without --no-tls to use one.",
                severity="error",
            )
            return

        def answered(choice: PinChoice | None) -> None:
            if choice is None:
                return
            self.loudsync.change_pin(choice.pin)
            if choice.pin is None:
                self.notify("No PIN: anyone on the network can join.", severity="warning")
            else:
                self.notify("New PIN set; members already in stay.")

        self.app.push_screen(PinDialog(hosting.pin), answered)

    def action_stop(self) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.loudsync.stop_hosting()

        self.app.push_screen(
            ConfirmDialog("Stop the session?", "Every guest is sent back to Browse."), answered
        )
