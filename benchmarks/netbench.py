"""Join, fan-out and memory, against our host and the bare baseline, each in its own process,
over plain `ws://` and over `wss://`.

Four servers run as subprocesses at once: ours exactly as `python -m loudsync_tui host
--headless` (with `--no-tls`, and without it: then it serves `wss://` with the
certificate it makes in its `--config-dir`), and the bare baseline plain and with TLS
on a certificate of the same kind (P-256, self-signed, made by
`loudsync_tui.security.certificate.load_or_create`). Guests live in load-generator
worker processes, and one prober in this process joins and leaves again and again,
going round the four servers round by round, timing its own join and asking the
workers when the last of them heard of it. Going round keeps a busy neighbour on the
machine from favouring any of them, and puts the TLS figures beside the plain ones.
Over TLS the load generators and the prober do not verify the certificate (loopback).
Our host runs with `--normal-priority`, at the priority the baseline has, unless told to
run as users do (`raised_priority`): then it asks for nice -11, which it gets as root.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.children import die_with_parent
from benchmarks.loadgen import join, raise_fd_limit, worker_main
from benchmarks.wsclient import insecure_context
from loudsync_tui.security.certificate import load_or_create

SESSION_ID = "bench"
LONG_HEARTBEAT = ("--heartbeat-interval", "3600", "--heartbeat-timeout", "86400")
"""The load guests send nothing after JOIN; deadlines longer than any run keep them
joined. (600 s was shorter than a 5,000-guest run: growing the TLS host took 1,143 s,
and the plain host had dropped its silent guests by then.) The host's tick still runs
every second, as with the defaults."""

KINDS = ("bare", "ours")
TRANSPORTS = ("ws", "wss")
SPARE_FILES = 64
"""Descriptors a process needs besides its sockets to the servers (pipes, logs, imports)."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); with few samples p99 is the maximum."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict[str, Any]:
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


def nice_of(pid: int) -> int:
    """The nice value of a process's main thread (field 19 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])


def open_files_limit(pid: int) -> int:
    """The soft limit on open files of a running process; -1 for unlimited."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return -1 if soft == "unlimited" else int(soft)
    raise RuntimeError("no open-files limit")


def _child_setup() -> None:
    """Before exec in a server process: as many open files as the hard limit allows (as
    `prlimit` would; the host also raises its own), and die with the benchmark."""
    raise_fd_limit()
    die_with_parent()


@dataclass
class ServerProcess:
    kind: str
    transport: str
    proc: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def name(self) -> str:
        """The guests' group in the workers, and the key in the results."""
        return f"{self.kind}-{self.transport}"

    @property
    def secure(self) -> bool:
        return self.transport == "wss"

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def open_files(self) -> int:
        return open_files_limit(self.proc.pid)

    def nice(self) -> int:
        return nice_of(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@cache
def _host_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "loudsync_tui", "host", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _our_command(
    max_members: int, config_dir: str, *, tls: bool, raised_priority: bool = False
) -> list[str]:
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
    if not raised_priority and "--normal-priority" in _host_help():
        cmd.append("--normal-priority")
    if "--no-tls" not in _host_help():
        if tls:
            raise RuntimeError("this host cannot serve wss:// (no --no-tls option)")
        return cmd  # an older host, plain only
    if not tls:
        cmd.append("--no-tls")  # plain ws://, the same transport as the plain baseline
    return cmd


def start_server(
    kind: str, transport: str, max_members: int, workdir: Path, *, raised_priority: bool = False
) -> ServerProcess:
    """Start `ours` or `bare` over `ws` or `wss` and wait for the line that names its port."""
    tls = transport == "wss"
    if kind == "ours":
        config_dir = str(workdir / f"config-{transport}")
        cmd = _our_command(max_members, config_dir, tls=tls, raised_priority=raised_priority)
    else:
        cmd = [sys.executable, "-m", "benchmarks.bare_server"]
        if tls:
            cert = load_or_create(workdir / "bare-tls", "LOUDSYNC bare benchmark")
            cmd += ["--certfile", str(cert.cert_path), "--keyfile", str(cert.key_path)]
    log = workdir / f"{kind}-{transport}.stderr.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=err,  # a file: a pipe nobody reads would block the host's logging
            text=True,
            preexec_fn=_child_setup,
            cwd=Path(__file__).resolve().parent.parent,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"(?:127\.0\.0\.1:|port )(\d+)", line)
    if found is None:
        proc.kill()
        raise RuntimeError(f"{kind} {transport} server did not start: {line!r}; see {log}")
    if tls and kind == "ours" and "wss://" not in line:
        proc.kill()
        raise RuntimeError(f"our host did not serve wss://: {line!r}")
    return ServerProcess(kind, transport, proc, int(found.group(1)), log)


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

    def share(self, total: int) -> int:
        """The most guests of one group that any one worker holds at `total`."""
        return math.ceil(total / len(self.conns))

    async def ask_all(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        for conn, command in zip(self.conns, commands, strict=True):
            conn.send(command)
        results = await asyncio.gather(*(loop.run_in_executor(None, c.recv) for c in self.conns))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return list(results)

    async def pace(self, on: bool) -> None:
        """Have the workers read in batches (see `loadgen.READ_EVERY_S`), or as data comes."""
        await self.ask_all([("pace", on)] * len(self.conns))

    async def limits(self) -> list[tuple[int, int]]:
        """Each worker's (soft, hard) open-files limit, as it raised it at start."""
        return [tuple(r) for r in await self.ask_all([("limits",)] * len(self.conns))]

    async def grow_to(
        self, group: str, total: int, port: int, *, secure: bool, parallel: int
    ) -> tuple[int, str]:
        """Add guests of `group`, spread evenly, until `total` are connected, or as many as
        would join: (joins that failed, the first failure)."""
        n = len(self.conns)
        sizes = self.sizes.setdefault(group, [0] * n)
        targets = [total // n + (1 if i < total % n else 0) for i in range(n)]
        commands = [
            (
                "add",
                group,
                port,
                SESSION_ID,
                f"{group}-w{i}-{sizes[i]}",
                max(0, t - sizes[i]),
                secure,
                parallel,
            )
            for i, t in enumerate(targets)
        ]
        replies = await self.ask_all(commands)
        self.sizes[group] = [r[0] for r in replies]
        errors = [r[2] for r in replies if r[2]]
        return sum(r[1] for r in replies), errors[0] if errors else ""

    async def wait(
        self, group: str, kind: str, member_id: str, within: float = 5.0
    ) -> tuple[int, float, float]:
        """(guests that heard, when the last had it, when the last was read by a worker)."""
        replies = await self.ask_all([("wait", group, kind, member_id, within)] * len(self.conns))
        return (
            sum(r[0] for r in replies),
            max(r[1] for r in replies),
            max(r[2] for r in replies),
        )

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
    fanout_read_ms: list[float] = field(default_factory=list)
    """The same fan-outs until the load processes had read the last copy: what the
    guests' own delay on this shared machine adds."""
    missed: int = 0
    tls: dict[str, str] | None = None


async def probe_round(
    server: ServerProcess,
    name: str,
    workers: Workers,
    level: LevelResult,
    *,
    keep: bool,
    within: float,
) -> None:
    """Join, wait until every guest heard, leave, wait until every guest heard again."""
    group = server.name
    tls = _probe_tls() if server.secure else None
    started = time.monotonic()
    client, sent, done = await join(server.port, SESSION_ID, name, tls=tls)
    level.tls = client.tls_info()
    count, last, read = await workers.wait(group, "joined", name, within)
    if keep:
        level.join_ms.append((done - started) * 1000)
        if count < workers.guests(group):
            level.missed += workers.guests(group) - count
        else:
            level.fanout_ms.append((last - sent) * 1000)
            level.fanout_read_ms.append((read - sent) * 1000)
    leave = {"type": "LEAVE", "timestamp": time.time_ns() // 1_000_000, "reason": "probe"}
    client.send_text(msgspec.json.encode(leave))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.closed, 5)
    client.close()
    await workers.wait(group, "left", name, within)


WARMUP_ROUNDS = 3


@cache
def _probe_tls() -> ssl.SSLContext:
    """One context for every probe, made before any is timed (as a real client keeps one)."""
    return insecure_context()


def parallel_joins(level: int) -> int:
    """Joins each worker keeps in flight while growing. Each join makes the server
    broadcast to everyone already in; at thousands of guests many joins in flight only
    queue behind those broadcasts, and past the servers' handshake timeouts they fail."""
    return 16 if level <= 1000 else 4 if level <= 2000 else 2


def files_needed(servers: list[ServerProcess], level: int, workers: Workers) -> dict[str, int]:
    """Open files each process needs to hold `level` guests on every server."""
    return {
        "load generator": len(servers) * workers.share(level) + SPARE_FILES,
        "server": level + SPARE_FILES,
    }


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


async def measure_level(
    servers: list[ServerProcess], level: int, rounds: int, workers: Workers, log: Log = _quiet
) -> dict[str, dict[str, Any]]:
    """Grow each server to `level` guests, then probe them in turn, round by round, so all
    see the same machine (other load, CPU frequency) at the same time."""
    out: dict[str, dict[str, Any]] = {}
    results = {s.name: LevelResult(level) for s in servers}
    for server in servers:
        added = level - workers.guests(server.name)
        before = server.rss_kib()
        t0 = time.monotonic()
        failed, error = await workers.grow_to(
            server.name, level, server.port, secure=server.secure, parallel=parallel_joins(level)
        )
        grow_s = time.monotonic() - t0
        await asyncio.sleep(0.5)
        after = server.rss_kib()
        joined = workers.guests(server.name)
        added_now = added - failed
        log(
            f"{server.name}: {joined:,} guests in, {added_now:,} added in {grow_s:.1f} s"
            + (f", {failed} joins failed ({error})" if failed else "")
        )
        out[server.name] = {
            "setup_s": round(grow_s, 2),
            "added": added_now,
            "joined": joined,
            "join_failures": failed,
            "first_join_failure": error or None,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_per_guest_kib": round((after - before) / added_now, 2) if added_now > 0 else None,
        }
    within = max(5.0, level / 500)
    await workers.pace(True)
    try:
        for r in range(rounds + WARMUP_ROUNDS):
            order = servers if r % 2 == 0 else servers[::-1]
            for server in order:
                name = f"probe-{server.name}-{level}-{r}"
                await probe_round(
                    server,
                    name,
                    workers,
                    results[server.name],
                    keep=r >= WARMUP_ROUNDS,
                    within=within,
                )
                await asyncio.sleep(0.005)
    finally:
        await workers.pace(False)
    log(f"{level:,} guests: {rounds} rounds on each of {len(servers)} servers done")
    for name, result in results.items():
        out[name].update(
            {
                "join": summary(result.join_ms),
                "fanout": summary(result.fanout_ms) if result.fanout_ms else None,
                "fanout_read": summary(result.fanout_read_ms) if result.fanout_read_ms else None,
                "missed_deliveries": result.missed,
                "tls": result.tls,
            }
        )
    return out


async def run(
    levels: list[int],
    rounds: dict[int, int],
    worker_count: int,
    transports: tuple[str, ...] = TRANSPORTS,
    kinds: tuple[str, ...] = KINDS,
    log: Log = _quiet,
    *,
    raised_priority: bool = False,
) -> dict[str, Any]:
    """Every level on every server; results as out[transport][kind]["levels"][level].
    `kinds` without "bare" measures our host alone (no ratios; half the time)."""
    own_limit = raise_fd_limit()
    workers = Workers(worker_count)
    servers: list[ServerProcess] = []
    out: dict[str, Any] = {
        "workers": worker_count,
        "transports": list(transports),
        "kinds": list(kinds),
        "skipped_levels": {},
    }
    for transport in transports:
        out[transport] = {kind: {"levels": {}} for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="loudsync-bench-") as tmp:
        try:
            for transport in transports:
                for kind in kinds:
                    servers.append(
                        start_server(
                            kind,
                            transport,
                            max(levels) + 100,
                            Path(tmp),
                            raised_priority=raised_priority,
                        )
                    )
            await asyncio.sleep(0.3)
            worker_limits = await workers.limits()
            out["open_files"] = {
                "orchestrator": list(own_limit),
                "load_generators": [list(x) for x in worker_limits],
                "servers": {s.name: s.open_files() for s in servers},
            }
            out["nice"] = {s.name: s.nice() for s in servers}
            for server in servers:
                out[server.transport][server.kind]["rss_idle_kib"] = server.rss_kib()
            for level in levels:
                short = _short_of_files(servers, level, workers, worker_limits)
                if short:
                    out["skipped_levels"][level] = short
                    log(f"{level:,} guests not run: {short}")
                    continue
                measured = await measure_level(servers, level, rounds[level], workers, log)
                for server in servers:
                    out[server.transport][server.kind]["levels"][level] = measured[server.name]
            await workers.close_guests()
        finally:
            for server in servers:
                server.stop()
            await workers.exit()
    return out


def _short_of_files(
    servers: list[ServerProcess],
    level: int,
    workers: Workers,
    worker_limits: list[tuple[int, int]],
) -> str:
    """Why `level` cannot be held with these open-files limits; empty if it can."""
    need = files_needed(servers, level, workers)
    problems = []
    soft = min(s for s, _ in worker_limits)
    if 0 <= soft < need["load generator"]:
        hard = min(h for _, h in worker_limits)
        problems.append(
            f"a load generator may open {soft} files (hard limit {hard}) and needs "
            f"{need['load generator']}"
        )
    for server in servers:
        limit = server.open_files()
        if 0 <= limit < need["server"]:
            problems.append(f"{server.name} may open {limit} files and needs {need['server']}")
    if not problems:
        return ""
    return (
        "; ".join(problems)
        + " (raise the hard limit as root: `ulimit -Hn`, `prlimit`, or LimitNOFILE=)"
    )


if __name__ == "__main__":
    import json

    result = asyncio.run(run([10, 100], {10: 10, 100: 10}, 2))
    print(json.dumps(result, indent=1))
