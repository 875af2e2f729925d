"""Idle traffic: the bytes a joined, quiet guest costs on the wire, both ways.

Real guests (`GuestService`, the `websockets` client with its defaults) join a real
`HostService` through a TCP proxy that counts every byte after the HTTP upgrade, so
the count is WebSocket frames with their headers (TCP/IP headers excluded). The full
run uses the default heartbeat settings for 20 s, which also covers one of the
`websockets` keepalive pings (every 20 s); the quick run shortens the heartbeat
interval and scales bytes per interval to the default 5 s, without keepalives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppStore, ConnectionState

DEFAULT_INTERVAL = HostConfig("s", "h", "h").heartbeat_interval


class CountingProxy:
    """Forwards and counts bytes; `plain` strips the compression offer from the upgrade."""

    def __init__(self, target_port: int, *, plain: bool = False) -> None:
        self.target_port = target_port
        self.plain = plain
        self.port = 0
        self.up = 0
        self.down = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def reset(self) -> None:
        self.up = self.down = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        for src, dst, up in ((reader, up_w, True), (up_r, writer, False)):
            task = asyncio.create_task(self._pipe(src, dst, up))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
        with contextlib.suppress(ConnectionError):
            if up and self.plain:  # the request is small: one read holds it on loopback
                head = await src.read(65536)
                lines = head.split(b"\r\n")
                kept = [x for x in lines if not x.lower().startswith(b"sec-websocket-extensions")]
                dst.write(b"\r\n".join(kept))
            while data := await src.read(65536):
                if up:
                    self.up += len(data)
                else:
                    self.down += len(data)
                dst.write(data)
                await dst.drain()
        dst.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _connected(service: GuestService) -> bool:
    guest = service.store.get().guest
    return guest is not None and guest.connection is ConnectionState.CONNECTED


async def measure(guests: int = 5, *, quick: bool = False) -> dict[str, Any]:
    interval = 0.25 if quick else DEFAULT_INTERVAL
    intervals = 20 if quick else 4
    logging.getLogger("loudsync_tui").setLevel(logging.CRITICAL)
    host = HostService(
        HostConfig(
            session_name="idle",
            host_name="Host",
            host_id="dev-host",
            session_id="idle",
            port=0,
            bind="127.0.0.1",
            discovery=False,
            heartbeat_interval=interval,
            heartbeat_timeout=interval * 3,
            max_members=2 * guests + 1,
        ),
        AppStore(),
    )
    await host.start()
    proxies = {"deflate": CountingProxy(host.port), "plain": CountingProxy(host.port, plain=True)}
    services: list[GuestService] = []
    for proxy in proxies.values():
        await proxy.start()
        keys = [DeviceKey.generate() for _ in range(guests)]
        services += [
            GuestService(
                GuestConfig(
                    address=f"127.0.0.1:{proxy.port}",
                    name=f"Guest {i}",
                    device_id=key.device_id,
                    session_id="idle",
                    device_key=key.private,
                ),
                AppStore(),
            )
            for i, key in enumerate(keys)
        ]
    try:
        for service in services:
            service.start()
        deadline = time.monotonic() + 10
        while not all(_connected(s) for s in services):
            if time.monotonic() > deadline:
                raise RuntimeError("idle guests did not connect")
            await asyncio.sleep(0.02)
        await asyncio.sleep(interval * 2)  # past the first latency updates
        for proxy in proxies.values():
            proxy.reset()
        started = time.monotonic()
        await asyncio.sleep(interval * intervals)
        elapsed = time.monotonic() - started
        counts = {kind: (p.up, p.down) for kind, p in proxies.items()}
    finally:
        await asyncio.gather(*(s.aclose() for s in services), return_exceptions=True)
        await host.aclose()
        for proxy in proxies.values():
            await proxy.stop()
    out: dict[str, Any] = {
        "guests_per_variant": guests,
        "heartbeat_interval_s": interval,
        "window_s": round(elapsed, 2),
        "scaled_to_interval_s": DEFAULT_INTERVAL,
        "keepalive_included": not quick,
    }
    for kind, (up, down) in counts.items():
        per_interval = (up + down) / guests / (elapsed / interval)
        out[kind] = {
            "bytes_up": up,
            "bytes_down": down,
            "bytes_per_interval_per_guest": round(per_interval, 1),
            "bytes_per_s_per_guest": round(per_interval / DEFAULT_INTERVAL, 1),
        }
    return out


if __name__ == "__main__":
    print(asyncio.run(measure(quick=True)))
