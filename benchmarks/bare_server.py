"""The baseline: the least a server on bare `websockets` must do for the same exchange.

It accepts, answers a JOIN with WELCOME and MEMBER_LIST (the same shapes and sizes as
ours), tells everyone else with `broadcast`, and on LEAVE or a dropped link tells them
MEMBER_LEFT. No validation, rate limits, heartbeats, store or logging: the gap between
it and our host is what our own work costs. `websockets` runs with its defaults
(permessage-deflate) and, as our server, without keepalive pings (heartbeat deadlines
do that job there).

Run: `python -m benchmarks.bare_server` prints `listening on port N` and serves;
with `--certfile CERT --keyfile KEY` it serves `wss://` with that certificate, with the
same TLS settings as our host (TLS 1.2 or later, `websockets`' own use of asyncio's TLS).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import ssl
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


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """As our host's: `loudsync_tui.security.certificate.HostCertificate.server_context`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


async def main(tls: ssl.SSLContext | None = None) -> None:
    server = BareServer()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serve(server.handle, "127.0.0.1", 0, ssl=tls, ping_interval=None) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        print(f"listening on port {port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    from benchmarks.loadgen import raise_fd_limit

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_server")
    parser.add_argument("--certfile", help="serve wss:// with this PEM certificate")
    parser.add_argument("--keyfile", help="the certificate's PEM private key")
    args = parser.parse_args()
    if (args.certfile is None) != (args.keyfile is None):
        parser.error("--certfile and --keyfile go together")
    context = None if args.certfile is None else tls_context(args.certfile, args.keyfile)
    raise_fd_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(context))
    sys.exit(0)
