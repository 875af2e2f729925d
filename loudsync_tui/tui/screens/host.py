"""Host: the session this app runs, its members, how it is protected and who is banned."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal
from textual.widgets import Digits, Footer, Static

from loudsync_tui.protocol import SyncReport
from loudsync_tui.security.certificate import comparison_code
from loudsync_tui.store import HostingState, Member, PlaybackState
from loudsync_tui.text import printable
from loudsync_tui.tui import format
from loudsync_tui.tui.dialogs.bans import BansDialog
from loudsync_tui.tui.dialogs.confirm import ConfirmDialog
from loudsync_tui.tui.dialogs.file_picker import FilePicker, start_folder
from loudsync_tui.tui.dialogs.kick import KickChoice, KickDialog
from loudsync_tui.tui.dialogs.pin import PinChoice, PinDialog
from loudsync_tui.tui.dialogs.text_prompt import TextPrompt, number_check
from loudsync_tui.tui.screens.base import StoreScreen
from loudsync_tui.tui.widgets.event_log import EventLog
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.now_playing import NowPlayingPanel
from loudsync_tui.tui.widgets.queue_table import QueueTable
from loudsync_tui.tui.widgets.title_bar import TitleBar

NARROW_BELOW = 72
"""Columns under which the code loses its label and the PIN gets a line of its own."""
SIDE_BY_SIDE = 160
"""Columns from which the members and the queue sit side by side."""
VOLUME_STEPS = "0 to 150 (%)"


class HostScreen(StoreScreen):
    """The header (address, code, fingerprint, PIN) is what guests need, so it always shows
    in full: the screen never scrolls (app.tcss), and the table and log share the rest."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW_BELOW, "-medium"), (SIDE_BY_SIDE, "-wide")]
    # The music keys are cmus's and ncmpcpp's; Left and Right are the screen's even while
    # a table (whose own Left and Right scroll sideways) has the focus.
    BINDINGS = [
        Binding("o", "add_music", "Add music"),
        Binding("space", "play_pause", "Play/Pause"),
        Binding("left", "seek(-10)", "Back 10 s", show=False, priority=True),
        Binding("right", "seek(10)", "Forward 10 s", show=False, priority=True),
        Binding("n", "skip('next')", "Next", show=False),
        Binding("P", "skip('prev')", "Previous", show=False),
        Binding("x", "remove", "Remove from queue", show=False),
        Binding("L", "loop", "Loop queue", show=False),
        Binding("v", "volume", "Volume", show=False),
        Binding("m", "mute", "Mute", show=False),
        Binding("t", "offset", "Latency offset", show=False),
        Binding("d", "dj", "DJ", show=False),
        Binding("k", "kick", "Kick"),
        Binding("b", "bans", "Bans", show=False),
        Binding("p", "pin", "PIN", show=False),
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
        yield NowPlayingPanel(host=True, local_us=self.local_us, id="now-playing")
        with Container(id="playing-tables"):
            yield MemberTable(id="members")
            yield QueueTable(id="queue")
        yield EventLog(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self._unmuted: dict[str, float] = {}
        """Each muted member's volume before, for `m` to give back."""
        self.set_heading("Hosting")
        self.watch_store(lambda s: (s.hosting, s.playback.sync), self._draw_members)
        self.watch_store(lambda s: s.playback, self._draw_playback)
        self.watch_store(lambda s: s.log, self.query_one(EventLog).show)
        self.query_one(MemberTable).focus()

    def _draw_members(self, slice_: tuple[HostingState | None, SyncReport | None]) -> None:
        hosting, own = slice_
        if hosting is not None and own is not None and hosting.host_id in hosting.members:
            # The host's own row shows its speakers, as every guest's row shows theirs.
            members = dict(hosting.members)
            members[hosting.host_id] = replace(members[hosting.host_id], sync=own)
            hosting = replace(hosting, members=members)
        self._draw(hosting)

    def _draw_playback(self, playback: PlaybackState) -> None:
        self.query_one(NowPlayingPanel).show(playback, playback.clock)
        self.query_one(QueueTable).show(playback)

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
        state = self.store.get()
        self._draw_members((state.hosting, state.playback.sync))

    # Music -----------------------------------------------------------------------

    def action_add_music(self) -> None:
        chosen = self.loudsync.settings.music_dir
        folder = Path(chosen) if chosen else start_folder()
        self.app.push_screen(FilePicker(folder, self.loudsync.add_music))

    def action_play_pause(self) -> None:
        self.loudsync.host_control("toggle")

    def action_seek(self, seconds: float) -> None:
        self.loudsync.host_control("seek", seconds)

    def action_skip(self, which: str) -> None:
        self.loudsync.host_control(which)

    def action_remove(self) -> None:
        index = self.query_one(QueueTable).selected_index
        if index is None:
            self.notify("The queue is empty: press o to add music.", severity="warning")
            return
        self.loudsync.remove_track(index)

    def action_loop(self) -> None:
        loop = not self.store.get().playback.loop
        self.loudsync.set_loop(loop)
        self.notify("Looping the queue." if loop else "Not looping.", timeout=2)

    # The selected member's sound ---------------------------------------------------

    def _selected_member(self, doing: str) -> Member | None:
        hosting = self.store.get().hosting
        key = self.query_one(MemberTable).selected_key
        if hosting is None or key is None or key not in hosting.members:
            self.notify(f"Select a member to {doing} first.", severity="warning")
            return None
        return hosting.members[key]

    def _sync_of(self, member: Member) -> SyncReport | None:
        state = self.store.get()
        if state.hosting is not None and member.id == state.hosting.host_id:
            return state.playback.sync
        return member.sync

    def _plays(self, member: Member) -> bool:
        if not member.audio:
            self.notify(f"{printable(member.name)} plays no audio (a remote).", severity="warning")
            return False
        return True

    def action_volume(self) -> None:
        member = self._selected_member("set the volume of")
        if member is None or not self._plays(member):
            return
        sync = self._sync_of(member)
        now = 100.0 if sync is None or sync.volume is None else sync.volume * 100

        def answered(text: str | None) -> None:
            if text is not None:
                self._unmuted.pop(member.id, None)
                self.loudsync.set_member_output(member.id, volume=float(text) / 100)

        self.app.push_screen(
            TextPrompt(
                f"Volume of {member.name} (%)",
                value=f"{now:.0f}",
                hint=f"{VOLUME_STEPS}; 100 is as the file is. Enter sets it; Esc cancels.",
                validate=number_check(0, 150, "The volume"),
            ),
            answered,
        )

    def action_mute(self) -> None:
        member = self._selected_member("mute")
        if member is None or not self._plays(member):
            return
        sync = self._sync_of(member)
        volume = 1.0 if sync is None or sync.volume is None else sync.volume
        if member.id in self._unmuted or volume == 0:
            self.loudsync.set_member_output(member.id, volume=self._unmuted.pop(member.id, 1.0))
        else:
            self._unmuted[member.id] = volume
            self.loudsync.set_member_output(member.id, volume=0.0)

    def action_offset(self) -> None:
        member = self._selected_member("set the latency offset of")
        if member is None or not self._plays(member):
            return
        sync = self._sync_of(member)
        now = 0.0 if sync is None or sync.latency_offset_ms is None else sync.latency_offset_ms

        def answered(text: str | None) -> None:
            if text is not None:
                self.loudsync.set_member_output(member.id, latency_offset_ms=float(text))

        self.app.push_screen(
            TextPrompt(
                f"Latency offset of {member.name} (ms)",
                value=f"{now:.0f}",
                hint="-2000 to 2000. How much later than it reports these speakers sound "
                "(Bluetooth: 150 to 250); they then play that much earlier.",
                validate=number_check(-2000, 2000, "The offset"),
            ),
            answered,
        )

    def action_dj(self) -> None:
        member = self._selected_member("make a DJ")
        hosting = self.store.get().hosting
        if member is None or hosting is None:
            return
        if member.id == hosting.host_id:
            self.notify("The host can always play, pause, seek and skip.")
            return
        self.loudsync.set_dj(member.id, not member.dj)

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
