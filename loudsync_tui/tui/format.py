"""How values read on screen: short, fixed-width where it helps, legible in 16 colours."""

from __future__ import annotations

import math
import re
import time

from rich.text import Text

from loudsync_tui.protocol import SyncReport
from loudsync_tui.security.certificate import readable, short
from loudsync_tui.store import (
    ConnectionState,
    DiscoveredSession,
    GuestState,
    LogEntry,
    Member,
    NowPlaying,
    PlaybackState,
    join_refusal,
)
from loudsync_tui.text import printable

# Every name, reason and error text here may come from a peer or an mDNS record: it goes
# into a Text (never parsed as markup) and through `printable` (no terminal escapes).


def latency(value: float | None) -> Text:
    text = "—" if value is None else (f"{value:.1f}" if value < 10 else f"{value:.0f}")
    return Text(text, justify="right")


def clock(at_ms: int, seconds: bool = False) -> str:
    """Local wall-clock time of an epoch-ms timestamp ("--:--" for one no clock can show)."""
    try:
        local = time.localtime(at_ms / 1000)
    except (OverflowError, OSError, ValueError):  # decode bounds make this rare: belt and braces
        return "--:--:--" if seconds else "--:--"
    return time.strftime("%H:%M:%S" if seconds else "%H:%M", local)


def member_name(member: Member, own_id: str | None) -> Text:
    text = Text(printable(member.name))
    if member.is_host:
        text.append(" (host)", style="bold")
    if member.dj:
        text.append(" (DJ)", style="bold")
    if member.id == own_id:
        text.append(" (you)", style="bold")
    return text


_STATUS_STYLE = {"connected": "green", "reconnecting": "yellow", "pending": "yellow"}


def status(value: str) -> Text:
    return Text(value, style=_STATUS_STYLE.get(value, "red"))


def member_cells(member: Member, own_id: str | None) -> tuple[Text | str, ...]:
    return (
        member_name(member, own_id),
        status(member.status),
        sync_error(member),
        volume(member.sync),
        offset(member.sync),
        underruns(member.sync),
        latency(member.latency),
        clock_accuracy(member.clock_uncertainty_us),
        clock(member.joined_at),
        device(member),
    )


def sync_error(member: Member) -> Text:
    """How far its speakers are from the timeline: `±0.06 ms`, red past 1 ms; `remote`
    for a member that plays no audio; `—` until a playing member has reported."""
    if not member.audio:
        return Text("remote", style="dim", justify="right")
    if member.sync is None:
        return Text("—", justify="right")
    return within_ms(member.sync.error_us, too_far="bold red")


def underruns(sync: SyncReport | None) -> Text:
    if sync is None:
        return Text("—", justify="right")
    return Text(str(sync.underruns), style="yellow" if sync.underruns else "", justify="right")


def volume(sync: SyncReport | None) -> Text:
    """`80%`, `muted`; `—` when not reported."""
    if sync is None or sync.volume is None:
        return Text("—", justify="right")
    if sync.volume == 0:
        return Text("muted", style="yellow", justify="right")
    return Text(f"{sync.volume * 100:.0f}%", justify="right")


def offset(sync: SyncReport | None) -> Text:
    if sync is None or sync.latency_offset_ms is None:
        return Text("—", justify="right")
    return Text(f"{sync.latency_offset_ms:+.0f}", justify="right")


def duration(ms: float | None) -> str:
    """`3:07`, `1:02:03`; `--:--` when unknown."""
    if ms is None or not math.isfinite(ms) or ms < 0:
        return "--:--"
    seconds = int(ms // 1000)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def track_title(track: NowPlaying) -> Text:
    """`Title — Artist · Album`: tags are a file's (or a host's) words, shown literally."""
    text = Text(printable(track.title), style="bold")
    if track.artist:
        text.append(" — ")
        text.append(printable(track.artist))
    if track.album:
        text.append(" · ", style="dim")
        text.append(printable(track.album), style="dim")
    return text


def progress(playback: PlaybackState, position_ms: float | None, width: int) -> Text:
    """`▶ 1:23 ━━━━━━━━╺──────── 3:45` filling `width` cells; a live source has no bar."""
    epoch, track = playback.epoch, playback.track
    if track is None or epoch is None:
        state = ("■", "stopped")
    elif playback.ended:
        state = ("■", "ended")
    elif epoch.playing:
        state = ("▶", "playing")
    else:
        state = ("⏸", "paused")
    text = Text(f"{state[0]} ", style="bold")
    text.append(state[1].ljust(8), style="green" if state[1] == "playing" else "yellow")
    if track is None:
        return text
    if track.live:
        text.append("live", style="bold")
        if position_ms is not None:
            text.append(f"  {duration(position_ms)}", style="dim")
        return text
    elapsed = duration(position_ms)
    total = duration(track.duration_ms)
    bar_width = width - text.cell_len - len(elapsed) - len(total) - 2
    text.append(elapsed + " ")
    if bar_width >= 4:
        done = 0.0
        if track.duration_ms and position_ms is not None:
            done = min(1.0, max(0.0, position_ms / track.duration_ms))
        filled = round(done * bar_width)
        text.append("━" * filled, style="bold")
        text.append("─" * (bar_width - filled), style="dim")
        text.append(" ")
    text.append(total)
    return text


def playback_details(playback: PlaybackState, *, host: bool) -> Text:
    """`track 2/5 · loop · opus · buffer 250 ms · speakers: Built-in`."""
    parts: list[Text] = []
    track = playback.track
    if host and playback.queue:
        parts.append(Text(f"track {playback.queue_index + 1}/{len(playback.queue)}"))
    elif track is not None and track.queue_length:
        parts.append(Text(f"track {track.position + 1}/{track.queue_length}"))
    if host and playback.loop:
        parts.append(Text("loop", style="bold"))
    if playback.codec:
        parts.append(Text(playback.codec))
    if playback.buffer_ms is not None:
        parts.append(Text(f"buffer {playback.buffer_ms:.0f} ms"))
    if host and playback.output is not None:  # a guest's own line says more (own_speakers)
        parts.append(Text.assemble(("speakers: ", "dim"), printable(playback.output)))
    elif host and playback.silent is not None:
        parts.append(Text(printable(playback.silent), style="yellow"))
    text = Text()
    for n, part in enumerate(parts):
        if n:
            text.append(" · ", style="dim")
        text.append_text(part)
    return text


def clock_accuracy(uncertainty_us: float | None) -> Text:
    """How well a member knows the session clock: `±0.04 ms`, red past 1 ms (too loose
    for sample-aligned playback), `—` until it has said."""
    if uncertainty_us is None:
        return Text("—", justify="right")
    return within_ms(uncertainty_us, too_far="red")


def within_ms(us: float, *, too_far: str) -> Text:
    """`±0.04` (ms, right-aligned; whole ms from 10), in `too_far` past 1 ms: how far
    off a clock or a member's speakers may be."""
    ms = abs(us) / 1000
    shown = f"±{ms:.2f}" if ms < 10 else f"±{ms:.0f}"
    return Text(shown, style=too_far if ms > 1 else "", justify="right")


def device(member: Member) -> Text | str:
    """The device kind, and `unproven` when the host let it in without a key proof: its
    id, and so who it claims to be, was not checked."""
    if member.proven is False:
        return Text(f"{printable(member.device_type)} unproven".lstrip(), style="yellow")
    return Text(printable(member.device_type or "—"))


def join_note(session: DiscoveredSession) -> Text:
    """Whether the session can be joined, and what joining it takes or risks."""
    if (refusal := join_refusal(session)) is not None:
        return Text(f"✗ {printable(refusal)}", style="red")
    if not session.pin_required and session.encrypted:
        return Text("ok", style="green")
    note = Text()
    if session.pin_required:
        note.append("PIN", style="bold")
    if not session.encrypted:
        note.append(" plain" if note else "plain", style="yellow")
    return note


def session_cells(session: DiscoveredSession, contested: bool = False) -> tuple[Text | str, ...]:
    """One Browse row; `contested`: another record claims the same session (see `rivals`).

    A host that stopped answering (killed, unplugged: no mDNS goodbye) stays listed until
    its records expire; its row is dimmed and says `unreachable` so nobody waits on it."""
    address = session.addresses[0] if session.addresses else "?"
    gone = session.reachable is False
    note = Text("unreachable", style="bold yellow") if gone else join_note(session)
    if contested:
        note = Text.assemble(("⚠ rival ", "bold yellow"), note)
    style = "dim" if gone else ""
    return (
        Text(printable(session.name), style=style),
        Text(printable(session.host_name), style=style),
        Text(f"{session.members}/{session.max_members}", style=style, justify="right"),
        Text(printable(f"{address}:{session.port}"), style=style),
        note,
    )


def log_line(entry: LogEntry) -> Text:
    style = {"info": "", "warning": "yellow", "error": "bold red"}[entry.level]
    stamp = clock(entry.at, seconds=True) + " "
    line = Text(stamp, style="dim")
    line.append(printable(entry.text, indent=" " * len(stamp)), style=style)
    return line


def connection(guest: GuestState, now: float) -> Text:
    """The guest's link as one line, with the attempt and a countdown while retrying."""
    state = guest.connection
    if state is ConnectionState.RECONNECTING:
        text = f"reconnecting, attempt {guest.attempt}/{guest.max_attempts}"
        if guest.next_attempt_at is not None and now < guest.next_attempt_at:
            text += f", next try in {math.ceil(guest.next_attempt_at - now)} s"
        else:  # the countdown is over: the attempt itself is under way
            text += ": connecting…"
        return Text(text, style="yellow")
    if state is ConnectionState.FAILED:
        return Text("failed: press r to retry, l to leave", style="bold red")
    if state is ConnectionState.CONNECTED:
        return Text("connected", style="green")
    if state is ConnectionState.CONNECTING:
        return Text("connecting…", style="yellow")
    return Text(printable(guest.ended or "disconnected"), style="red")


def fingerprint_lines(fingerprint: str) -> list[str]:
    """The full fingerprint as two rows of eight groups: fits 80 columns, reads aloud."""
    groups = readable(fingerprint).split()
    return [" ".join(groups[i : i + 8]) for i in range(0, len(groups), 8)]


_READABLE = re.compile(r"(?:[0-9A-F]{4} ){15}[0-9A-F]{4}")


def with_fingerprints(message: str) -> Text:
    """`message` with each full readable fingerprint in bold on two aligned rows of eight
    groups, so a dialog narrower than 80 columns never splits a group across lines."""
    text = Text()
    for n, line in enumerate(message.split("\n")):
        if n:
            text.append("\n")
        line = printable(line)
        start = 0
        for found in _READABLE.finditer(line):
            text.append(line[start : found.start()])
            indent = "\n" + " " * found.start()
            text.append(indent.join(fingerprint_lines(found.group())), style="bold")
            start = found.end()
        text.append(line[start:])
    return text


def host_security(fingerprint: str | None, pin: str | None, *, narrow: bool = False) -> Text:
    """What guests must compare (the fingerprint) and type (the PIN), for the Host screen.

    `narrow` (under about 72 columns) gives the PIN a line of its own: beside the first
    fingerprint row it would wrap between the word and the digits."""
    text = Text()
    if fingerprint is None:
        text.append("unencrypted (--no-tls)", style="bold yellow")
        text.append(": others on the network can read it", style="yellow")
        rest: list[str] = []
    else:
        first, *rest = fingerprint_lines(fingerprint)
        text.append("fingerprint ", style="dim")
        text.append(first, style="bold")
    pin_text = (
        Text("no PIN", style="dim")
        if pin is None
        else Text.assemble(("PIN ", "dim"), (pin, "bold reverse"))
    )
    if not narrow:
        text.append("   ")
        text.append_text(pin_text)
    for line in rest:
        text.append("\n" + " " * len("fingerprint "))
        text.append(line, style="bold")
    if narrow:
        text.append("\n")
        text.append_text(pin_text)
    return text


def guest_security(guest: GuestState) -> Text:
    """Whether the joined session is encrypted and which host identity was verified."""
    if guest.encrypted is None:
        failed = guest.connection is ConnectionState.FAILED
        return Text(f"security: {'not connected' if failed else 'checking…'}", style="dim")
    if not guest.encrypted:
        return Text(
            "NOT ENCRYPTED: others on the network can read this session", style="bold yellow"
        )
    text = Text("encrypted", style="green")
    if guest.fingerprint:
        text.append("   host fingerprint ", style="dim")
        text.append(short(guest.fingerprint) + " …", style="bold")
        text.append(" verified", style="green")
    return text


def own_speakers(playback: PlaybackState) -> Text:
    """A guest's own output: `here: sync ±0.05 ms · buffer 240 ms · vol 100% · offset
    +0 ms · DEVICE` (the device last: a long name is what gets cut), or why it plays
    nothing."""
    if playback.silent is not None:
        return Text(printable(playback.silent), style="yellow")
    sync = playback.sync
    if playback.output is None or sync is None:
        return Text()
    ms = abs(sync.error_us) / 1000
    text = Text.assemble(("here: ", "dim"), "sync ")
    text.append(f"±{ms:.2f} ms", style="bold red" if ms > 1 else "")
    text.append(f" · buffer {sync.buffer_ms:.0f} ms · vol ")
    text.append_text(volume(sync))
    text.append(" · offset ")
    text.append_text(offset(sync))
    text.append(" ms")
    if sync.underruns:
        text.append(f" · {sync.underruns} underruns", style="yellow")
    text.append(" · ")
    text.append(printable(playback.output))
    return text
