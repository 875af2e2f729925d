"""Headless `discover`: list the sessions on the LAN once, for people (a table) or scripts (JSON).

Exit status 0 means the LAN was searched, whether or not anything answered; 1 means mDNS
could not run here at all, so a script can tell "nobody hosts" from "cannot look".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loudsync_tui.net.discovery import DiscoveryUnavailable, discover_once
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
        cells = (
            session.name,
            session.host_name,
            f"{session.members}/{session.max_members}",
            join_address(session) or "-",
            status,
        )
        table.add_row(*(Text(printable(cell)) for cell in cells))
    return table


def run_discover(args: argparse.Namespace) -> int:
    timeout: float = args.timeout
    interfaces: list[str] = list(args.interfaces)
    try:
        sessions = asyncio.run(discover_once(timeout, interfaces))
    except DiscoveryUnavailable as exc:
        print(f"loudsync-tui discover: LAN discovery is unavailable: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if not sessions:
        print(f"No LOUDSYNC sessions found on the LAN within {timeout:g} s.", file=sys.stderr)
        return 0
    if args.json:
        for session in sessions:
            print(json.dumps(session_json(session), ensure_ascii=False), flush=True)
    else:
        Console().print(_table(sessions))
    return 0
