"""One message to many guests, framed once.

`websockets.broadcast` frames a message again for every connection: the extension's
encode, the frame's header, a list of writes to flush. But a server's frames are never
masked, and the host's extension leaves binary messages (audio) and text to a crowd
uncompressed (`compression`, RFC 7692 lets a sender skip any message), so every guest's
copy is the same bytes. `send_to_all` frames the message once and queues those bytes on
each connection's protocol, then flushes it as `websockets` does (`send_data`, which the
host's TLS connections override to write in small pieces). Per-message deflate contexts
are untouched by a message that skips them, so what follows still inflates.

To 1,000 connections, handing out one MEMBER_JOINED took the host 9.3 and 8.2 ms this
way against 14.7 and 11.3 through `broadcast` uncompressed (`python -m
benchmarks.broadcast --guests 1000`, two runs each, alternated); the socket writes alone
took 9.0.
"""

from __future__ import annotations

from collections.abc import Iterable

from websockets.asyncio.connection import Connection
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN


def frame(data: bytes, *, text: bool) -> bytes:
    """`data` as one unmasked, uncompressed, final frame on the wire."""
    return Frame(Opcode.TEXT if text else Opcode.BINARY, data).serialize(mask=False, extensions=[])


def send_to_all(connections: Iterable[Connection], data: bytes, *, text: bool) -> None:
    """`data` to every open connection, uncompressed, without waiting.

    As `websockets.broadcast`: a connection that is not open is skipped; one in the middle
    of a fragmented message, or whose write fails, is skipped with a warning in its log."""
    wire = frame(data, text=text)
    for connection in connections:
        if connection.protocol.state is not OPEN:
            continue
        if connection.send_in_progress is not None:
            connection.logger.warning("skipped a message to all: sending a fragmented message")
            continue
        try:
            connection.protocol.writes.append(wire)
            connection.send_data()
        except Exception as exc:  # as broadcast: one guest's failure is not the others'
            connection.logger.warning("skipped a message to all: failed to write it: %s", exc)
