"""Idle traffic: the bytes a joined, quiet guest costs on the wire, both ways.

Real guests (`GuestService`, the `websockets` client with its defaults) join a real
`HostService` through a TCP proxy that counts every byte after the HTTP upgrade, so
the count is WebSocket frames with their headers (TCP/IP headers excluded). The full
run uses the default heartbeat settings for 20 s, two rounds of the idle pattern (a
pair of session-clock probes and a HEARTBEAT every 10 s); the quick run shortens the heartbeat
interval and scales bytes per interval to the default 5 s. The host sends no
`websockets` keepalive pings: its heartbeat deadlines do that job.

Over `wss://` a second host serves TLS with its own certificate and the guests join it
as a verified host (its fingerprint given), so the proxy counts TLS records: the
frames, encrypted, with each record's header and tag. The "no compression" guests
cannot have their offer stripped from an encrypted upgrade, so theirs go through a
relay that ends their TLS with the host's own certificate and key (the fingerprint
they check and sign is the host's), strips the offer, and opens TLS to the host; the
count is taken between the guests and the relay, on TLS records the relay's asyncio
TLS makes one per write, as the host's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from loudsync_tui.config import GuestConfig, HostConfig
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.net.host_service import HostService
from loudsync_tui.security.certificate import client_context, load_or_create
from loudsync_tui.security.device_key import DeviceKey
from loudsync_tui.store import AppStore, ConnectionState

DEFAULT_INTERVAL = HostConfig("s", "h", "h").heartbeat_interval


class CountingProxy:
    """Forwards and counts bytes; `plain` strips the compression offer from the upgrade.

    With `serve_tls` and `to_tls` it is a TLS relay instead: it ends the client's TLS with
    `serve_tls` and talks TLS to the target with `to_tls` (its counts are then of the
    plaintext, and not used)."""

    def __init__(
        self,
        target_port: int,
        *,
        plain: bool = False,
        serve_tls: ssl.SSLContext | None = None,
        to_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.target_port = target_port
        self.plain = plain
        self.serve_tls = serve_tls
        self.to_tls = to_tls
        self.port = 0
        self.up = 0
        self.down = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.serve_tls)
        self.port = self._server.sockets[0].getsockname()[1]

    def reset(self) -> None:
        self.up = self.down = 0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port, ssl=self.to_tls)
        for src, dst, up in ((reader, up_w, True), (up_r, writer, False)):
            task = asyncio.create_task(self._pipe(src, dst, up))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
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
        with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
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


async def _host(interval: float, guests: int, key_dir: str | None) -> HostService:
    """A host for `guests` idle guests; TLS with its certificate in `key_dir` when given."""
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
            tls=key_dir is not None,
            key_dir=key_dir,
        ),
        AppStore(),
    )
    await host.start()
    return host


def _guests(count: int, port: int, fingerprint: str | None) -> list[GuestService]:
    """Guests as `loudsync-tui join` makes them; over TLS to the verified `fingerprint`."""
    keys = [DeviceKey.generate() for _ in range(count)]
    return [
        GuestService(
            GuestConfig(
                address=f"127.0.0.1:{port}",
                name=f"Guest {i}",
                device_id=key.device_id,
                session_id="idle",
                device_key=key.private,
                tls=fingerprint is not None,
                expected_fingerprint=fingerprint,
            ),
            AppStore(),
        )
        for i, key in enumerate(keys)
    ]


async def measure(
    guests: int = 5, *, quick: bool = False, transports: tuple[str, ...] = ("ws", "wss")
) -> dict[str, Any]:
    """Bytes per idle guest, per transport (`ws`, `wss`) and variant (`deflate`, `plain`)."""
    interval = 0.25 if quick else DEFAULT_INTERVAL
    intervals = 20 if quick else 4
    logging.getLogger("loudsync_tui").setLevel(logging.CRITICAL)
    hosts: list[HostService] = []
    proxies: dict[tuple[str, str], CountingProxy] = {}
    relays: list[CountingProxy] = []
    services: list[GuestService] = []
    with tempfile.TemporaryDirectory(prefix="loudsync-idle-") as tmp:
        try:
            for transport in transports:
                key_dir = str(Path(tmp) / "host") if transport == "wss" else None
                host = await _host(interval, guests, key_dir)
                hosts.append(host)
                plain_target = host.port
                if key_dir is not None:
                    relay = CountingProxy(
                        host.port,
                        plain=True,
                        serve_tls=load_or_create(Path(key_dir)).server_context(),
                        to_tls=client_context(),
                    )
                    await relay.start()
                    relays.append(relay)
                    plain_target = relay.port
                proxies[(transport, "deflate")] = CountingProxy(host.port)
                proxies[(transport, "plain")] = CountingProxy(plain_target, plain=key_dir is None)
                for variant in ("deflate", "plain"):
                    proxy = proxies[(transport, variant)]
                    await proxy.start()
                    services += _guests(guests, proxy.port, host.fingerprint)
            for service in services:
                service.start()
            deadline = time.monotonic() + 15
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
            counts = {key: (p.up, p.down) for key, p in proxies.items()}
        finally:
            await asyncio.gather(*(s.aclose() for s in services), return_exceptions=True)
            for host in hosts:
                await host.aclose()
            for proxy in [*proxies.values(), *relays]:
                await proxy.stop()
    out: dict[str, Any] = {
        "guests_per_variant": guests,
        "heartbeat_interval_s": interval,
        "window_s": round(elapsed, 2),
        "scaled_to_interval_s": DEFAULT_INTERVAL,
    }
    for (transport, variant), (up, down) in counts.items():
        per_interval = (up + down) / guests / (elapsed / interval)
        out.setdefault(transport, {})[variant] = {
            "bytes_up": up,
            "bytes_down": down,
            "bytes_per_interval_per_guest": round(per_interval, 1),
            "bytes_per_s_per_guest": round(per_interval / DEFAULT_INTERVAL, 1),
        }
    return out


if __name__ == "__main__":
    print(asyncio.run(measure(quick=True)))
