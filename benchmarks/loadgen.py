"""Load-generator worker: one process holding many guests, answering the orchestrator.

Guests are spread over several of these processes so that reading a thousand
MEMBER_JOINED frames is not serialised behind one Python interpreter. Each worker
records, per announced member, how many of its guests got the news and when the last
one did; the orchestrator combines the workers' answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import ssl
import time
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from benchmarks.wsclient import HandshakeError, WsClient, insecure_context

_JOINED = b'{"type":"MEMBER_JOINED"'
_LEFT = b'{"type":"MEMBER_LEFT"'
_PROBE = b'"probe-'


def _nr_open() -> int:
    """The kernel's ceiling for any process's open-files limit."""
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE as far as the hard limit allows (thousands
    of sockets need more than the common 1,024); returns (soft, hard) as they now are,
    -1 for unlimited. Only root can raise the hard limit; this does not try."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = _nr_open() if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return int(soft), int(hard)


def join_frame(device_id: str, session_id: str) -> bytes:
    return msgspec.json.encode(
        {
            "type": "JOIN",
            "timestamp": time.time_ns() // 1_000_000,
            "sessionId": session_id,
            "protocolVersion": 1,
            "device": {"id": device_id, "name": device_id[:64], "type": "terminal"},
        }
    )


async def join(
    port: int,
    session_id: str,
    device_id: str,
    on_message: Any = None,
    *,
    tls: ssl.SSLContext | None = None,
) -> tuple[WsClient, float, float]:
    """Connect (over TLS when `tls` is given) and join: (client, when JOIN was sent, when
    WELCOME and MEMBER_LIST were in)."""
    client = await WsClient.connect(port, on_message, queued=True, tls=tls)
    sent = time.monotonic()
    client.send_text(join_frame(device_id, session_id))
    got: set[bytes] = set()
    at = sent
    while got != {b"WELCOME", b"MEMBER_LIST"}:
        data, at = await client.receive()
        kind = data[9 : data.index(b'"', 9)]
        if kind == b"ERROR":
            raise RuntimeError(f"join refused: {data[:200]!r}")
        got.add(kind)
    client.queue = None  # from now on only the callback sees messages
    return client, sent, at


class Worker:
    """Guests in groups, one group per server under test."""

    def __init__(self) -> None:
        self.guests: dict[str, list[WsClient]] = {}
        self.arrivals: dict[tuple[str, str], list[float]] = {}
        """Per announcement: [guests that heard, last arrival, last read by this process]."""
        self.changed = asyncio.Event()
        self.tls = insecure_context()

    def on_message(self, client: WsClient, data: bytes, at: float) -> None:
        if _PROBE not in data:
            return
        if data.startswith(_JOINED):
            key = ("joined", msgspec.json.decode(data)["member"]["id"])
        elif data.startswith(_LEFT):
            key = ("left", msgspec.json.decode(data)["memberId"])
        else:
            return
        record = self.arrivals.setdefault(key, [0, 0.0, 0.0])
        record[0] += 1
        record[1] = max(record[1], at)
        record[2] = max(record[2], client.read_at)
        self.changed.set()

    async def add(
        self,
        group: str,
        port: int,
        session_id: str,
        prefix: str,
        count: int,
        secure: bool = False,
        parallel: int = 16,
    ) -> tuple[int, int, str]:
        """Join `count` more guests of `group`, `parallel` at a time: (guests now, joins
        that failed, the first failure). A failed join is counted, not raised, so a level
        the machine cannot hold says so instead of ending the run."""
        sem = asyncio.Semaphore(parallel)
        guests = self.guests.setdefault(group, [])
        failures: list[str] = []

        async def one(i: int) -> None:
            async with sem:
                try:
                    guest, _, _ = await join(
                        port,
                        session_id,
                        f"{prefix}-{i:05d}",
                        self.on_message,
                        tls=self.tls if secure else None,
                    )
                except (OSError, RuntimeError, TimeoutError, HandshakeError) as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                else:
                    guests.append(guest)

        await asyncio.gather(*(one(i) for i in range(count)))
        return len(guests), len(failures), failures[0] if failures else ""

    async def wait(
        self, group: str, kind: str, member_id: str, within: float
    ) -> tuple[int, float, float]:
        """Until every guest of `group` heard of `member_id` (or `within` s): (count, last
        arrival, last read)."""
        deadline = time.monotonic() + within
        key = (kind, member_id)
        expected = len(self.guests.get(group, ()))
        while True:
            count, last, read = self.arrivals.get(key, (0, 0.0, 0.0))
            if count >= expected or time.monotonic() >= deadline:
                self.arrivals.pop(key, None)
                return int(count), float(last), float(read)
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), max(0.0, deadline - time.monotonic()))

    async def close(self) -> None:
        for guests in self.guests.values():
            for guest in guests:
                guest.close()
        self.guests.clear()
        await asyncio.sleep(0.05)


READ_EVERY_S = 0.01
"""A worker sleeps this long between looks at its sockets rather than waiting on them.

The host and the load guests share the machine's cores, which guests on machines of
their own would not: a worker woken by each frame the host sends takes CPU from the
host in the middle of its fan-out, a thousand times over. Asleep, it is not woken, and
then reads what came in one batch. Each message keeps its kernel arrival stamp
(`wsclient`), so the figures are when the guests had it; waking a worker for every
frame made the fan-out to 1,000 slower (p50 27.6 against 22.5 ms with our host over
ws, alone, quiet). Workers do this while the probe measures (`paced`), not while the
sessions grow: joins then go as fast as they can, with as few handshakes in flight
at once as before."""


class Pacer:
    """Sleeps between the loop's turns while `paced`; otherwise stays out of the way."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.paced = False
        loop.call_soon(self._turn)

    def _turn(self) -> None:
        if self.paced:
            time.sleep(READ_EVERY_S)
            self.loop.call_soon(self._turn)  # runs once per turn of the loop
        else:  # look again soon, letting the loop wait on its sockets meanwhile
            self.loop.call_later(READ_EVERY_S, self._turn)


async def _serve(conn: Connection) -> None:
    worker = Worker()
    loop = asyncio.get_running_loop()
    pacer = Pacer(loop)
    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        result: object
        try:
            if command == "add":
                result = await worker.add(*args)
            elif command == "pace":
                pacer.paced = bool(args[0])
                result = pacer.paced
            elif command == "limits":
                result = resource.getrlimit(resource.RLIMIT_NOFILE)
            elif command == "wait":
                result = await worker.wait(*args)
            elif command in ("close", "exit"):
                await worker.close()
                result = 0
            else:
                result = RuntimeError(f"unknown command {command!r}")
        except Exception as exc:  # the orchestrator re-raises it; never leave it waiting
            result = exc
        conn.send(result)
        if command == "exit":
            return


def worker_main(conn: Connection) -> None:
    """Entry point of a worker process (multiprocessing, spawn)."""
    raise_fd_limit()
    asyncio.run(_serve(conn))
