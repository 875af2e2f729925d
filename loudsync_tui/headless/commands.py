"""`host --headless --commands`: the transport driven by lines on stdin, for scripts.

One command a line: `play`, `pause`, `toggle`, `seek SECONDS` (relative, may be
negative), `next`, `prev`, `volume MEMBER 0..1.5`, `offset MEMBER MS` (a member by name
or id), `quit`. A line that is none of these is answered on stderr
and changes nothing. End of input leaves the session running.
"""

from __future__ import annotations

import asyncio
import sys

from loudsync_tui.headless.console import stderr
from loudsync_tui.net.host_service import HostService

HELP = (
    "commands: play, pause, toggle, seek SECONDS, next, prev, volume MEMBER V, "
    "offset MEMBER MS, quit"
)
LIMITS = {"volume": (0.0, 1.5), "offset": (-2000.0, 2000.0)}


def apply_command(service: HostService, line: str) -> str | None:
    """Carry out one line; returns what was wrong with it, None when it was done."""
    words = line.split()
    if not words:
        return None
    verb, args = words[0].lower(), words[1:]
    if verb == "quit":
        service.stop()
        return None
    if verb in LIMITS and len(args) >= 2:
        return _set_output(service, verb, " ".join(args[:-1]), args[-1])
    if service.streamer is None:
        return "nothing to control: the host plays nothing (start it with --play)"
    if verb in ("play", "pause", "toggle", "next", "prev") and not args:
        return service.control(verb)
    if verb == "seek" and len(args) == 1:
        try:
            seconds = float(args[0])
        except ValueError:
            return f"seek takes seconds, got {args[0]!r}"
        return service.control("seek", seconds)
    return f"unknown command {line.strip()[:40]!r}; {HELP}"


async def read_commands(service: HostService) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        problem = apply_command(service, line.decode(errors="replace"))
        if problem is not None:
            stderr.print(problem, markup=False)


def _set_output(service: HostService, verb: str, who: str, value: str) -> str | None:
    low, high = LIMITS[verb]
    try:
        number = float(value)
    except ValueError:
        return f"{verb} takes a number, got {value!r}"
    if not low <= number <= high:
        return f"{verb} must be {low:g} to {high:g}, got {value}"
    members = service.core.members
    member = next((m for m in members if who in (m.id, m.name)), None)
    if member is None:
        return f"no member {who[:40]!r}"
    if verb == "volume":
        service.set_output(member.id, volume=number)
    else:
        service.set_output(member.id, latency_offset_ms=number)
    return None
