"""How values read on screen: short, fixed-width where it helps, legible in 16 colours."""

from __future__ import annotations

import math
import re
import time

from rich.text import Text

from loudsync_tui.security.certificate import readable, short
from loudsync_tui.store import (
    ConnectionState,
    DiscoveredSession,
    GuestState,
    LogEntry,
    Member,
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
        latency(member.latency),
        clock_accuracy(member.clock_uncertainty_us),
        clock(member.joined_at),
        device(member),
    )


def clock_accuracy(uncertainty_us: float | None) -> Text:
    """How well a member knows the session clock: `±0.04 ms`, red past 1 ms (too loose
    for sample-aligned playback), `—` until it has said."""
    if uncertainty_us is None:
        return Text("—", justify="right")
    ms = uncertainty_us / 1000
    shown = f"±{ms:.2f}" if ms < 10 else f"±{ms:.0f}"
    return Text(shown, style="red" if ms > 1 else "", justify="right")


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
