"""The baseline: the least a server on bare `websockets` must do for the same exchange.

It accepts, answers a JOIN with WELCOME and MEMBER_LIST (the same shapes and sizes as
ours), tells everyone else with `broadcast`, and on LEAVE or a dropped link tells them
MEMBER_LEFT. No validation, rate limits, heartbeats, store or logging: the gap between
it and our host is what our own work costs. `websockets` runs with its defaults
(permessage-deflate, keepalive pings), as our server does.

Run: `python -m benchmarks.bare_server` prints `listening on port N` and serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import time
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def _now() -> int:
    return time.time_ns() // 1_000_000


class BareServer:
    def __init__(self) -> None:
        self.members: dict[str, dict[str, Any]] = {}
        self.sockets: dict[str, ServerConnection] = {}

    async def handle(self, ws: ServerConnection) -> None:
        try:
            join = _decode(await ws.recv())
        except ConnectionClosed:
            return
        device = join["device"]
        member_id = device["id"]
        member = {
            "id": member_id,
            "name": device["name"],
            "isHost": False,
            "connectionStatus": "connected",
            "joinedAt": _now(),
            "latency": None,
        }
        self.members[member_id] = member
        others = list(self.sockets.values())
        self.sockets[member_id] = ws
        now = _now()
        welcome = {
            "type": "WELCOME",
            "timestamp": now,
            "clientId": member_id,
            "resumeToken": secrets.token_urlsafe(16),
            "session": {"id": join["sessionId"], "name": "bare", "memberCount": len(self.members)},
            "heartbeatInterval": 5000,
            "heartbeatTimeout": 15000,
        }
        try:
            await ws.send(_encode(welcome), text=True)
            members = list(self.members.values())
            await ws.send(
                _encode({"type": "MEMBER_LIST", "timestamp": now, "members": members}), text=True
            )
            broadcast(
                others,
                _encode({"type": "MEMBER_JOINED", "timestamp": now, "member": member}),
                text=True,
            )
            async for data in ws:
                if _decode(data).get("type") == "LEAVE":
                    break
        except ConnectionClosed:
            pass
        finally:
            self.members.pop(member_id, None)
            self.sockets.pop(member_id, None)
            left = {"type": "MEMBER_LEFT", "timestamp": _now(), "memberId": member_id}
            broadcast(list(self.sockets.values()), _encode(left), text=True)


async def main() -> None:
    server = BareServer()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serve(server.handle, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        print(f"listening on port {port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    sys.exit(0)
