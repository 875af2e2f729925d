"""How values read on screen: short, fixed-width where it helps, legible in 16 colours."""

from __future__ import annotations

import math
import time

from rich.text import Text

from loudsync_tui.store import ConnectionState, DiscoveredSession, GuestState, LogEntry, Member


def latency(value: float | None) -> Text:
    text = "—" if value is None else (f"{value:.1f}" if value < 10 else f"{value:.0f}")
    return Text(text, justify="right")


def clock(at_ms: int, seconds: bool = False) -> str:
    """Local wall-clock time of an epoch-ms timestamp."""
    return time.strftime("%H:%M:%S" if seconds else "%H:%M", time.localtime(at_ms / 1000))


def member_name(member: Member, own_id: str | None) -> Text:
    text = Text(member.name)
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
        clock(member.joined_at),
        member.device_type or "—",
    )


def session_cells(session: DiscoveredSession) -> tuple[Text | str, ...]:
    address = session.addresses[0] if session.addresses else "?"
    note = (
        Text("ok", style="green")
        if session.joinable
        else Text(f"✗ {session.why_not or 'cannot join'}", style="red")
    )
    return (
        session.name,
        session.host_name,
        Text(f"{session.members}/{session.max_members}", justify="right"),
        f"{address}:{session.port}",
        note,
    )


def log_line(entry: LogEntry) -> Text:
    style = {"info": "", "warning": "yellow", "error": "bold red"}[entry.level]
    line = Text(clock(entry.at, seconds=True) + " ", style="dim")
    line.append(entry.text, style=style)
    return line


def connection(guest: GuestState, now: float) -> Text:
    """The guest's link as one line, with the attempt and a countdown while retrying."""
    state = guest.connection
    if state is ConnectionState.RECONNECTING:
        text = f"reconnecting, attempt {guest.attempt}/{guest.max_attempts}"
        if guest.next_attempt_at is not None:
            wait = max(0, math.ceil(guest.next_attempt_at - now))
            text += f", next try in {wait} s"
        return Text(text, style="yellow")
    if state is ConnectionState.FAILED:
        return Text("failed: press r to retry, l to leave", style="bold red")
    if state is ConnectionState.CONNECTED:
        return Text("connected", style="green")
    if state is ConnectionState.CONNECTING:
        return Text("connecting…", style="yellow")
    return Text(guest.ended or "disconnected", style="red")
