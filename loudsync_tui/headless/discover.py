"""Headless `discover`: list the sessions on the LAN once, for people (a table) or scripts (JSON).

Exit status 0 means the LAN was searched, whether or not anything answered; 1 means mDNS
could not run here at all, so a script can tell "nobody hosts" from "cannot look".
Each session is checked with a TCP connect before it is shown, since mDNS keeps a host
that died without a goodbye listed for minutes. JSON lines go out as sessions are found;
Ctrl-C ends the search early and keeps what was found.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loudsync_tui.net.discovery import DEFAULT_PROBE, DiscoveryUnavailable, answers, discover_once
from loudsync_tui.net.tasks import TaskOwner
from loudsync_tui.store import DiscoveredSession
from loudsync_tui.text import printable


def join_address(session: DiscoveredSession) -> str | None:
    """`HOST:PORT` for `loudsync-tui join`, preferring IPv4 (listed first by zeroconf)."""
    if not session.addresses:
        return None
    host = session.addresses[0]
    return f"[{host}]:{session.port}" if ":" in host else f"{host}:{session.port}"


def session_json(session: DiscoveredSession) -> dict[str, Any]:
    return {
        "name": session.name,
        "host": session.host_name,
        "sessionId": session.session_id,
        "addresses": list(session.addresses),
        "port": session.port,
        "members": session.members,
        "maxMembers": session.max_members,
        "protocolVersion": session.protocol_version,
        "joinable": session.joinable,
        "whyNot": session.why_not,
        "address": join_address(session),
        "tls": session.encrypted,
        "fingerprint": session.fingerprint,
        "pin": session.pin_required,
        "reachable": session.reachable,
    }


def _table(sessions: list[DiscoveredSession]) -> Table:
    table = Table(title="LOUDSYNC sessions on the LAN")
    table.add_column("Session")
    table.add_column("Host")
    table.add_column("Members", justify="right")
    table.add_column("Join with")
    table.add_column("Status")
    for session in sessions:
        # Whatever an mDNS record says is data: Text cells are never parsed as markup, and
        # `printable` keeps escape sequences off the terminal (--json keeps the raw value).
        status = "joinable" if session.joinable else f"not joinable: {session.why_not}"
        if session.reachable is False:  # listed by mDNS, but nothing accepts a connection
            status = "not answering"
        cells = (
            session.name,
            session.host_name,
            f"{session.members}/{session.max_members}",
            join_address(session) or "-",
            status,
        )
        table.add_row(*(Text(printable(cell)) for cell in cells))
    return table


async def discover_checked(
    timeout: float,  # noqa: ASYNC109 - a listening window, not a deadline to cancel at
    interfaces: list[str],
    probe_timeout: float,
    on_checked: Callable[[DiscoveredSession], None] | None = None,
) -> list[DiscoveredSession]:
    """The sessions present at the end of the window, each with `reachable` from a TCP
    check made as soon as it was found (`on_checked` hears each as its check ends). The
    first SIGINT ends the window early; a second one interrupts."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    checks: dict[str, asyncio.Task[DiscoveredSession]] = {}
    tasks = TaskOwner("headless discover")

    async def check(session: DiscoveredSession) -> DiscoveredSession:
        ok = await answers(session.addresses, session.port, probe_timeout)
        checked = replace(session, reachable=ok)
        if on_checked is not None:
            on_checked(checked)
        return checked

    def found(session: DiscoveredSession) -> None:
        if session.key not in checks:
            checks[session.key] = tasks.spawn(check(session), name=f"check {session.key}")

    def interrupted() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, interrupted)
    try:
        sessions = await discover_once(timeout, interfaces, on_found=found, stop=stop)
        results = {s.key: s.reachable for s in await asyncio.gather(*checks.values())}
    finally:
        await tasks.aclose()  # only left running when the search itself failed
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
    return [replace(s, reachable=results.get(s.key)) for s in sessions]


def run_discover(args: argparse.Namespace) -> int:
    timeout: float = args.timeout
    interfaces: list[str] = list(args.interfaces)
    probe_timeout: float = getattr(args, "probe_timeout", None) or DEFAULT_PROBE.timeout
    printed: list[str] = []

    def print_json(session: DiscoveredSession) -> None:
        print(json.dumps(session_json(session), ensure_ascii=False), flush=True)
        printed.append(session.key)

    try:
        sessions = asyncio.run(
            discover_checked(timeout, interfaces, probe_timeout, print_json if args.json else None)
        )
    except DiscoveryUnavailable as exc:
        print(f"loudsync-tui discover: LAN discovery is unavailable: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if not (printed if args.json else sessions):
        print(f"No LOUDSYNC sessions found on the LAN within {timeout:g} s.", file=sys.stderr)
    elif not args.json:
        Console().print(_table(sessions))
    return 0
