"""A hostile host on 127.0.0.1: answers GET /session like a real one, then runs a script.

The script gets the socket once the guest's JOIN arrived and sends whatever it likes, so a
test can play a host that lies about its members, its timestamps or anything else.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from loudsync_tui.protocol import Join, SessionInfo, Welcome, decode, encode, now_ms

Script = Callable[[ServerConnection, Join], Awaitable[None]]

SESSION = SessionInfo(
    id="rogue1",
    name="Rogue party",
    host_id="host-rogue",
    host_name="Mallory",
    max_members=10,
    member_count=1,
    protocol_version=1,
)


def welcome(join: Join, session: SessionInfo = SESSION) -> str:
    return encode(
        Welcome(
            timestamp=now_ms(),
            client_id=join.device.id,
            resume_token="rogue-token",
            session=session,
            heartbeat_interval=5000,
            heartbeat_timeout=15000,
        )
    )


@asynccontextmanager
async def rogue_host(script: Script, session: SessionInfo = SESSION) -> AsyncIterator[int]:
    """Serve on an ephemeral port of 127.0.0.1; yields the port."""
    body = json.dumps(
        {
            "id": session.id,
            "name": session.name,
            "hostId": session.host_id,
            "hostName": session.host_name,
            "pinRequired": False,
        }
    ).encode()

    def info(_conn: ServerConnection, request: Request) -> Response | None:
        if request.path != "/session":
            return None
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return Response(200, "OK", headers, body)

    async def handle(ws: ServerConnection) -> None:
        first = decode(await ws.recv())
        assert isinstance(first, Join)
        await script(ws, first)
        await ws.wait_closed()

    async with serve(handle, "127.0.0.1", 0, process_request=info, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield int(port)
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
