"""Join, fan-out and memory, against our host and the bare baseline, each in its own process.

Both servers run as subprocesses at once (ours exactly as `python -m loudsync_tui
host --headless`), guests live in load-generator worker processes, and one prober in
this process joins and leaves again and again, alternating between the two servers
round by round, timing its own join and asking the workers when the last of them heard
of it. Alternating keeps a busy neighbour on the machine from favouring either side.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.loadgen import join, raise_fd_limit, worker_main

SESSION_ID = "bench"
LONG_HEARTBEAT = ("--heartbeat-interval", "300", "--heartbeat-timeout", "600")
"""The load guests send nothing after JOIN; long heartbeat deadlines keep them joined.
The host's tick still runs every second, as with the defaults."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); with few samples p99 is the maximum."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, float | int]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values), 2),
        "samples_ms": [round(v, 2) for v in values],
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _raise_limit_in_child() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


@dataclass
class ServerProcess:
    kind: str
    proc: subprocess.Popen[str]
    port: int
    log: Path

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _our_command(max_members: int, config_dir: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "loudsync_tui",
        "host",
        "--headless",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-discovery",
        # The load generator's clients send plain JOINs, as a Phase 1 client does: signing
        # each would measure Ed25519 in the generator, not the host.
        "--allow-unproven",
        "--max-members",
        str(max_members),
        "--session-id",
        SESSION_ID,
        "--name",
        "Bench",
        "--config-dir",
        config_dir,
        *LONG_HEARTBEAT,
    ]
    helptext = subprocess.run(
        [sys.executable, "-m", "loudsync_tui", "host", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "--no-tls" in helptext:  # plain ws://, the same transport as the baseline
        cmd.append("--no-tls")
    return cmd


def start_server(kind: str, max_members: int, workdir: Path) -> ServerProcess:
    """Start `ours` or `bare` and wait for the line that names its port."""
    if kind == "ours":
        cmd = _our_command(max_members, str(workdir / "config"))
    else:
        cmd = [sys.executable, "-m", "benchmarks.bare_server"]
    log = workdir / f"{kind}.stderr.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=err,  # a file: a pipe nobody reads would block the host's logging
            text=True,
            preexec_fn=_raise_limit_in_child,
            cwd=Path(__file__).resolve().parent.parent,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"(?:127\.0\.0\.1:|port )(\d+)", line)
    if found is None:
        proc.kill()
        raise RuntimeError(f"{kind} server did not start: {line!r}; see {log}")
    return ServerProcess(kind, proc, int(found.group(1)), log)


class Workers:
    """Load-generator processes, driven over pipes; guests grouped by server."""

    def __init__(self, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self.sizes: dict[str, list[int]] = {}

    def guests(self, group: str) -> int:
        return sum(self.sizes.get(group, ()))

    async def ask_all(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        for conn, command in zip(self.conns, commands, strict=True):
            conn.send(command)
        results = await asyncio.gather(*(loop.run_in_executor(None, c.recv) for c in self.conns))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return list(results)

    async def grow_to(self, group: str, total: int, port: int) -> None:
        """Add guests of `group`, spread evenly, until `total` are connected."""
        n = len(self.conns)
        sizes = self.sizes.setdefault(group, [0] * n)
        targets = [total // n + (1 if i < total % n else 0) for i in range(n)]
        commands = [
            ("add", group, port, SESSION_ID, f"{group}-w{i}-{sizes[i]}", max(0, t - sizes[i]))
            for i, t in enumerate(targets)
        ]
        self.sizes[group] = await self.ask_all(commands)

    async def wait(
        self, group: str, kind: str, member_id: str, within: float = 5.0
    ) -> tuple[int, float]:
        replies = await self.ask_all([("wait", group, kind, member_id, within)] * len(self.conns))
        return sum(r[0] for r in replies), max(r[1] for r in replies)

    async def close_guests(self) -> None:
        await self.ask_all([("close",)] * len(self.conns))
        self.sizes.clear()

    async def exit(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ask_all([("exit",)] * len(self.conns)), 10)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


@dataclass
class LevelResult:
    guests: int
    join_ms: list[float] = field(default_factory=list)
    fanout_ms: list[float] = field(default_factory=list)
    missed: int = 0


async def probe_round(
    server: ServerProcess, name: str, workers: Workers, level: LevelResult, *, keep: bool
) -> None:
    """Join, wait until every guest heard, leave, wait until every guest heard again."""
    group = server.kind
    started = time.monotonic()
    client, sent, done = await join(server.port, SESSION_ID, name)
    count, last = await workers.wait(group, "joined", name)
    if keep:
        level.join_ms.append((done - started) * 1000)
        if count < workers.guests(group):
            level.missed += workers.guests(group) - count
        else:
            level.fanout_ms.append((last - sent) * 1000)
    leave = {"type": "LEAVE", "timestamp": time.time_ns() // 1_000_000, "reason": "probe"}
    client.send_text(msgspec.json.encode(leave))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.closed, 5)
    client.close()
    await workers.wait(group, "left", name)


WARMUP_ROUNDS = 3


async def measure_level(
    servers: list[ServerProcess], level: int, rounds: int, workers: Workers
) -> dict[str, dict[str, Any]]:
    """Grow each server to `level` guests, then probe them in alternation, round by round,
    so both see the same machine (other load, CPU frequency) at the same time."""
    out: dict[str, dict[str, Any]] = {}
    results = {s.kind: LevelResult(level) for s in servers}
    for server in servers:
        added = level - workers.guests(server.kind)
        before = server.rss_kib()
        t0 = time.monotonic()
        await workers.grow_to(server.kind, level, server.port)
        grow_s = time.monotonic() - t0
        await asyncio.sleep(0.5)
        after = server.rss_kib()
        out[server.kind] = {
            "setup_s": round(grow_s, 2),
            "added": added,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_per_guest_kib": round((after - before) / added, 2) if added > 0 else None,
        }
    for r in range(rounds + WARMUP_ROUNDS):
        order = servers if r % 2 == 0 else servers[::-1]
        for server in order:
            name = f"probe-{server.kind}-{level}-{r}"
            await probe_round(server, name, workers, results[server.kind], keep=r >= WARMUP_ROUNDS)
            await asyncio.sleep(0.005)
    for kind, result in results.items():
        out[kind].update(
            {
                "join": summary(result.join_ms),
                "fanout": summary(result.fanout_ms) if result.fanout_ms else None,
                "missed_deliveries": result.missed,
            }
        )
    return out


async def run(levels: list[int], rounds: dict[int, int], worker_count: int) -> dict[str, Any]:
    raise_fd_limit()
    workers = Workers(worker_count)
    servers: list[ServerProcess] = []
    out: dict[str, Any] = {"workers": worker_count, "ours": {"levels": {}}, "bare": {"levels": {}}}
    with tempfile.TemporaryDirectory(prefix="loudsync-bench-") as tmp:
        try:
            for kind in ("bare", "ours"):
                servers.append(start_server(kind, max(levels) + 100, Path(tmp)))
            await asyncio.sleep(0.3)
            for server in servers:
                out[server.kind]["rss_idle_kib"] = server.rss_kib()
            for level in levels:
                measured = await measure_level(servers, level, rounds[level], workers)
                for kind, figures in measured.items():
                    out[kind]["levels"][level] = figures
            await workers.close_guests()
        finally:
            for server in servers:
                server.stop()
            await workers.exit()
    return out


if __name__ == "__main__":
    import json

    result = asyncio.run(run([10, 100], {10: 10, 100: 10}, 2))
    print(json.dumps(result, indent=1))
