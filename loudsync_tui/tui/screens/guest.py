"""Guest: the joined session, the link to its host, whether it is private, who is there."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.protocol import SyncReport
from loudsync_tui.store import ConnectionState, GuestState, PlaybackState
from loudsync_tui.text import printable
from loudsync_tui.tui import format
from loudsync_tui.tui.screens.base import StoreScreen
from loudsync_tui.tui.widgets.event_log import EventLog
from loudsync_tui.tui.widgets.member_table import MemberTable
from loudsync_tui.tui.widgets.now_playing import NowPlayingPanel
from loudsync_tui.tui.widgets.title_bar import TitleBar


class GuestScreen(StoreScreen):
    # A guest's own speakers: volume, offset, mute. A DJ also gets the host's music keys.
    BINDINGS = [
        Binding("plus", "volume(0.1)", "Louder", show=False),
        Binding("minus", "volume(-0.1)", "Quieter", show=False),
        Binding("left_square_bracket", "offset(-5)", "Offset -5 ms", show=False),
        Binding("right_square_bracket", "offset(5)", "Offset +5 ms", show=False),
        Binding("m", "mute", "Mute here"),
        Binding("space", "dj('toggle')", "Play/Pause (DJ)"),
        Binding("left", "dj('seek', -10)", "Back 10 s (DJ)", show=False, priority=True),
        Binding("right", "dj('seek', 10)", "Forward 10 s (DJ)", show=False, priority=True),
        Binding("n", "dj('next')", "Next (DJ)", show=False),
        Binding("P", "dj('prev')", "Previous (DJ)", show=False),
        Binding("l", "leave", "Leave"),
        Binding("r", "retry", "Retry"),
    ]

    def compose(self) -> ComposeResult:
        yield TitleBar()
        yield Static("", id="guest-info", classes="info")
        yield Static("", id="guest-link", classes="info")
        yield Static("", id="guest-security", classes="info")
        yield NowPlayingPanel(host=False, local_us=self.local_us, id="now-playing")
        yield MemberTable(id="members", sound=False)
        yield EventLog(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.set_heading("Joining")
        self._unmuted: float | None = None
        self.watch_store(lambda s: s.guest, self._draw)
        self.watch_store(
            lambda s: (s.playback, s.guest.clock if s.guest else None), self._draw_playback
        )
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

    def _draw_playback(self, slice_: tuple[PlaybackState, ClockEstimate | None]) -> None:
        playback, clock = slice_
        self.query_one(NowPlayingPanel).show(playback, clock, format.own_speakers(playback))

    def _is_dj(self) -> bool:
        guest = self.store.get().guest
        if guest is None or guest.client_id is None:
            return False
        me = guest.members.get(guest.client_id)
        return me is not None and me.dj

    def action_dj(self, action: str, seconds: float = 0.0) -> None:
        track = self.store.get().playback.track
        if action == "seek" and track is not None and track.live:
            self.notify("A live source cannot be seeked.", severity="warning", timeout=3)
            return
        self.loudsync.guest_control(action, seconds)

    def _sync(self) -> SyncReport | None:
        playback = self.store.get().playback
        if playback.sync is None:
            self.notify(
                f"This machine plays no sound: {playback.silent or 'nothing plays yet'}.",
                severity="warning",
            )
        return playback.sync

    def action_volume(self, step: float) -> None:
        sync = self._sync()
        if sync is not None:
            now = 1.0 if sync.volume is None else sync.volume
            self._unmuted = None
            self.loudsync.set_local_output(volume=round(min(1.5, max(0.0, now + step)), 2))

    def action_offset(self, step: float) -> None:
        sync = self._sync()
        if sync is not None:
            now = sync.latency_offset_ms or 0.0
            self.loudsync.set_local_output(latency_offset_ms=min(2000.0, max(-2000.0, now + step)))

    def action_mute(self) -> None:
        sync = self._sync()
        if sync is None:
            return
        volume = 1.0 if sync.volume is None else sync.volume
        if self._unmuted is not None or volume == 0:
            self.loudsync.set_local_output(volume=self._unmuted or 1.0)
            self._unmuted = None
        else:
            self._unmuted = volume
            self.loudsync.set_local_output(volume=0.0)

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
        if action == "dj":
            return self._is_dj()  # the host refuses the others: the keys are not offered
        return True

    def action_leave(self) -> None:
        self.loudsync.leave()

    def action_retry(self) -> None:
        self.loudsync.retry()
