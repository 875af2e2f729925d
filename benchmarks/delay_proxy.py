"""A TCP proxy on 127.0.0.1 that holds every chunk for an independent random delay.

Each direction of each connection has two threads: one reads chunks and stamps each with
its due time (arrival plus a uniform 0..max delay), the other writes them out in order,
each at its due time or right after the chunk before it, whichever is later, so nothing
overtakes. Threads sleep with `time.sleep` (clock_nanosleep), which wakes within tens of
microseconds of the time asked: an asyncio proxy waits in `epoll`, whose timeout is whole
milliseconds, and so held nearly every chunk 1.2 ms or more (a run's least delays toward
the guest were 1.16, 1.21, 1.23 ms) instead of drawing from 0-5 ms. The delays really
applied are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import socket
import threading
import time
from collections.abc import Callable

CHUNK = 65536


class DelayProxy:
    def __init__(self, target_port: int, max_delay_s: float, rng: random.Random) -> None:
        self.target_port = target_port
        self.max_delay_s = max_delay_s
        self.rng = rng
        self.applied_ms: dict[str, list[float]] = {"to_host": [], "to_guest": []}
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closing = False

    async def start(self) -> int:
        """Listen on an ephemeral port of 127.0.0.1; its number."""
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener = listener
        self._spawn(self._accept, listener)
        return int(listener.getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, cut every connection, and wait for the threads to end."""
        self._closing = True
        with self._lock:
            sockets = [s for s in (self._listener, *self._sockets) if s is not None]
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        threads = list(self._threads)
        await asyncio.to_thread(lambda: [t.join(2.0) for t in threads])

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closing:
            try:
                guest, _ = listener.accept()
                host = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            for s in (guest, host):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [guest, host]
            self._pipe(guest, host, self.applied_ms["to_host"])
            self._pipe(host, guest, self.applied_ms["to_guest"])

    def _pipe(self, src: socket.socket, dst: socket.socket, applied: list[float]) -> None:
        chunks: queue.Queue[tuple[float, float, bytes] | None] = queue.Queue()

        def receive() -> None:
            try:
                while chunk := src.recv(CHUNK):
                    now = time.monotonic()
                    chunks.put((now, now + self.rng.uniform(0, self.max_delay_s), chunk))
            except OSError:
                pass
            finally:
                chunks.put(None)

        def send() -> None:
            try:
                while (item := chunks.get()) is not None:
                    arrived, due, chunk = item
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    dst.sendall(chunk)
                    applied.append(round((time.monotonic() - arrived) * 1000, 3))
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        self._spawn(receive)
        self._spawn(send)
