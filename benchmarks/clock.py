"""Session clock accuracy: how far each guest's estimate is from the host's clock.

    python -m benchmarks.clock            # full: 60 s a scenario, 100 guests (~5 minutes)
    python -m benchmarks.clock --quick    # smoke run: 8 s a scenario, 5 guests (~1 minute)

Every process runs exactly as a user would run it (`python -m loudsync_tui host|join
--headless --json`), each with its own config dir, all on 127.0.0.1. On one machine every
process reads the same CLOCK_MONOTONIC, so the truth for every guest is the offset the
host prints in its ready line, and a guest's error is its reported `offsetUs` minus it.

Scenarios, one after the other (never at once, so each has the machine to itself):
  quiet  one guest straight to the host;
  proxy  one guest through a TCP proxy in this process that holds every chunk for an
         independent random 0-5 ms in each direction, never letting one overtake an
         earlier one in the same direction;
  crowd  many guests at once (default 100), plus the host process's CPU time.
A guest's figures count its clock reports from 3 s after it joined (in the crowd, also
not before the last guest joined) until the end of the run; its first report is judged
on its own. Headless guests never play, so after the start-up burst they probe at the
idle rate (one PING a heartbeat interval, 5 s by default), as a paused guest would.
Raw samples go to benchmarks/results/clock-<timestamp>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from benchmarks.children import die_with_parent
from benchmarks.delay_proxy import DelayProxy
from benchmarks.report import RESULTS_DIR, Row, figures_table, publish, us, within
from benchmarks.run import machine

ROOT = Path(__file__).resolve().parent.parent
WARMUP_S = 3.0
"""Reports in the first seconds after joining describe the start-up burst, not the steady state."""
HOST_READY_TIMEOUT_S = 20.0
JOIN_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0
STOP_BATCH = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Plan:
    duration_s: float
    guests: int
    max_delay_ms: float
    seed: int
    scenarios: tuple[str, ...]


SCENARIOS = ("quiet", "proxy", "crowd")
FULL_DURATION_S, FULL_GUESTS = 60.0, 100
QUICK_DURATION_S, QUICK_GUESTS = 8.0, 5

# Targets in µs: (median, p99) of |error| after the warm-up, and the first report's error.
QUIET_TARGET = (50.0, 200.0)
PROXY_TARGET = (200.0, 500.0)
FIRST_TARGET = 1000.0


# Children ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process, from /proc/PID/stat; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and ')'
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


class Children:
    """Every process this benchmark started; all of them are stopped on any exit."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []
        self._files: list[TextIO] = []

    async def spawn(
        self, args: list[str], config_dir: Path, stderr_path: Path
    ) -> asyncio.subprocess.Process:
        env = {**os.environ, "LOUDSYNC_CONFIG_DIR": str(config_dir), "PYTHONUNBUFFERED": "1"}
        err = self._prepare(config_dir, stderr_path)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loudsync_tui",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=ROOT,
            preexec_fn=die_with_parent,
            limit=1 << 20,
        )
        self.procs.append(proc)
        return proc

    def _prepare(self, config_dir: Path, stderr_path: Path) -> TextIO:
        """A fresh config dir (a guest's own identity) and a stderr file: a pipe nobody
        reads could block the child."""
        config_dir.mkdir(parents=True, exist_ok=True)
        err = stderr_path.open("w")
        self._files.append(err)
        return err

    async def stop(self, procs: list[asyncio.subprocess.Process]) -> None:
        """SIGTERM (a guest leaves, the host closes), then SIGKILL after a grace period."""
        alive = [p for p in procs if p.returncode is None]
        for p in alive:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        if alive:
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(p.wait()) for p in alive], timeout=STOP_GRACE_S
            )
            for task in pending:
                task.cancel()
        for p in alive:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(p.wait(), 2.0)

    async def stop_all(self) -> None:
        await self.stop(self.procs)
        self.close_files()

    def kill_all_now(self) -> None:
        """Last resort, with no event loop: SIGKILL whatever may still run."""
        for p in self.procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p.pid, signal.SIGKILL)
        self.close_files()

    def close_files(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """JSON objects from a child's stdout, one a line; other lines are skipped."""
    while line := await stream.readline():
        with contextlib.suppress(ValueError):
            obj = json.loads(line)
            if isinstance(obj, dict):
                yield obj


@dataclass
class Host:
    proc: asyncio.subprocess.Process
    port: int
    offset_us: int
    ready: dict[str, Any]
    log: list[dict[str, Any]] = field(default_factory=list)
    drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, children: Children, workdir: Path, max_members: int) -> Host:
        args = [
            "host",
            "--headless",
            "--json",
            "--no-tls",
            "--no-discovery",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--allow-unproven",
            "--max-members",
            str(max_members),
        ]
        proc = await children.spawn(args, workdir / "host-config", workdir / "host.stderr")
        assert proc.stdout is not None
        stream = proc.stdout
        line = await asyncio.wait_for(stream.readline(), HOST_READY_TIMEOUT_S)
        try:
            ready = json.loads(line)
            port = int(ready["url"].rsplit(":", 1)[1])
            offset = int(ready["sessionClockOffsetUs"])
        except (ValueError, KeyError, TypeError) as exc:
            tail = (workdir / "host.stderr").read_text()[-2000:]
            raise RuntimeError(f"the host did not start: {line!r}\n{tail}") from exc
        host = cls(proc, port, offset, ready)

        async def drain() -> None:  # the host's log lines: kept, and its pipe never fills
            async for obj in _lines(stream):
                host.log.append(obj)

        host.drain = asyncio.create_task(drain())
        return host


@dataclass
class ClockReport:
    at: float
    """This benchmark's monotonic seconds when the line arrived."""
    error_us: int
    raw: dict[str, Any]


@dataclass
class Guest:
    index: int
    proc: asyncio.subprocess.Process
    truth_us: int
    started: float
    joined_at: float | None = None
    reports: list[ClockReport] = field(default_factory=list)
    states: list[tuple[float, str]] = field(default_factory=list)
    ended: dict[str, Any] | None = None
    ended_at: float | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    def follow(self) -> None:
        assert self.proc.stdout is not None
        self.reader = asyncio.create_task(self._read(self.proc.stdout))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        try:
            async for obj in _lines(stream):
                now = time.monotonic()
                event = obj.get("event")
                if event == "clock":
                    self.reports.append(ClockReport(now, obj["offsetUs"] - self.truth_us, obj))
                elif event == "state":
                    self.states.append((now, str(obj.get("state"))))
                    if obj.get("state") == "connected" and self.joined_at is None:
                        self.joined_at = now
                        self.connected.set()
                elif event == "ended":
                    self.ended = obj
                    self.ended_at = now
        finally:
            self.gone.set()


# The proxy --------------------------------------------------------------------------


# Figures ----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); with under 100 samples p99 is the maximum."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def spread(values: list[float]) -> dict[str, float | int] | None:
    if not values:
        return None
    return {
        "n": len(values),
        "median": round(statistics.median(values), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


def guest_result(guest: Guest, window: tuple[float, float] | None) -> dict[str, Any]:
    """One guest's figures; `window` in this benchmark's monotonic seconds."""
    inside = [] if window is None else [r for r in guest.reports if window[0] <= r.at < window[1]]
    first = guest.reports[0] if guest.reports else None
    expected = 0 if window is None else max(0, int(window[1] - window[0]) - 1)  # 1/s, less one
    gaps = [b.at - a.at for a, b in itertools.pairwise(inside)]
    return {
        "guest": guest.index,
        "joined_after_s": None
        if guest.joined_at is None
        else round(guest.joined_at - guest.started, 3),
        "window_s": None if window is None else round(window[1] - window[0], 2),
        "abs_error_us": spread([abs(r.error_us) for r in inside]),
        "reports_in_window": len(inside),
        "reports_expected": expected,
        "longest_gap_s": round(max(gaps), 2) if gaps else None,
        "first_error_us": None if first is None else first.error_us,
        "first_after_join_s": None
        if first is None or guest.joined_at is None
        else round(first.at - guest.joined_at, 3),
        "states": [[round(t - guest.started, 3), s] for t, s in guest.states],
        "ended": guest.ended,
        "exit_code": guest.proc.returncode,
        "samples": [
            {
                "t_s": round(r.at - guest.started, 3),
                "in_window": window is not None and window[0] <= r.at < window[1],
                "error_us": r.error_us,
                "uncertainty_us": r.raw.get("uncertaintyUs"),
                "rtt_us": r.raw.get("rttUs"),
                "skew_ppm": r.raw.get("skewPpm"),
                "samples": r.raw.get("samples"),
            }
            for r in guest.reports
        ],
    }


# Scenarios --------------------------------------------------------------------------


async def _launch(children: Children, workdir: Path, address: str, host: Host, index: int) -> Guest:
    gdir = workdir / f"guest-{index:03d}"
    args = ["join", address, "--headless", "--json", "--no-audio"]  # the clock alone
    started = time.monotonic()
    proc = await children.spawn(args, gdir / "config", gdir.with_suffix(".stderr"))
    guest = Guest(index, proc, host.offset_us, started)
    guest.follow()
    connected = asyncio.create_task(guest.connected.wait())
    gone = asyncio.create_task(guest.gone.wait())
    await asyncio.wait(
        {connected, gone}, timeout=JOIN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
    )
    connected.cancel()
    gone.cancel()
    return guest


async def run_scenario(
    name: str, plan: Plan, children: Children, workdir: Path, console: Console
) -> dict[str, Any]:
    count = plan.guests if name == "crowd" else 1
    workdir = workdir / name
    workdir.mkdir()
    load_before = [round(x, 2) for x in os.getloadavg()]
    host = await Host.start(children, workdir, max_members=count + 1)
    proxy: DelayProxy | None = None
    port = host.port
    if name == "proxy":
        proxy = DelayProxy(host.port, plan.max_delay_ms / 1000, random.Random(plan.seed))
        port = await proxy.start()
    address = f"127.0.0.1:{port}"
    host_cpu_start = cpu_seconds(host.proc.pid)
    began = time.monotonic()

    # Start guests a few at a time (as many as there are cores), each once the one before
    # it in its lane has joined: a hundred interpreters starting at once would only
    # measure the start-up storm.
    lanes = max(1, min(count, os.cpu_count() or 1))
    next_index = iter(range(count))
    guests: list[Guest] = []

    async def lane() -> None:
        for i in next_index:
            guests.append(await _launch(children, workdir, address, host, i))

    await asyncio.gather(*(lane() for _ in range(lanes)))
    guests.sort(key=lambda g: g.index)
    joined = [g for g in guests if g.joined_at is not None and not g.gone.is_set()]
    all_joined = time.monotonic()
    console.log(
        f"{name}: {len(joined)}/{count} guest(s) joined in {all_joined - began:.1f} s; "
        f"measuring for {WARMUP_S + plan.duration_s:g} s"
    )
    host_cpu_joined = cpu_seconds(host.proc.pid)
    guest_cpu_joined = [cpu_seconds(g.proc.pid) for g in joined]
    end = all_joined + WARMUP_S + plan.duration_s
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(left, 10.0))
        if end - time.monotonic() > 1.0:
            got = sum(len(g.reports) for g in joined)
            console.log(f"{name}: {end - time.monotonic():.0f} s left, {got} clock reports")
    finished = time.monotonic()
    host_cpu_end = cpu_seconds(host.proc.pid)
    guest_cpu_end = [cpu_seconds(g.proc.pid) for g in joined]
    load_after = [round(x, 2) for x in os.getloadavg()]

    # Ten at a time: a hundred interpreters exiting at once would load the machine (and
    # its load average) for nothing.
    for i in range(0, len(guests), STOP_BATCH):
        await children.stop([g.proc for g in guests[i : i + STOP_BATCH]])
    if proxy is not None:
        await proxy.close()
    await children.stop([host.proc])
    for g in guests:
        if g.reader is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(g.reader, 2.0)
    if host.drain is not None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(host.drain, 2.0)

    per_guest: list[dict[str, Any]] = []
    for g in guests:
        window = None
        if g.joined_at is not None:
            window = (max(g.joined_at + WARMUP_S, all_joined), finished)
        result = guest_result(g, window)
        if g.joined_at is None:
            err_path = workdir / f"guest-{g.index:03d}.stderr"
            result["stderr_tail"] = err_path.read_text()[-1500:] if err_path.exists() else ""
        per_guest.append(result)

    measured = [r for r in per_guest if r["abs_error_us"] is not None]
    firsts = [abs(r["first_error_us"]) for r in per_guest if r["first_error_us"] is not None]
    pooled = [abs(s["error_us"]) for r in per_guest for s in r["samples"] if s["in_window"]]
    run_s = finished - all_joined
    cpu_run = (
        None
        if host_cpu_joined is None or host_cpu_end is None
        else (host_cpu_end - host_cpu_joined) / run_s * 100
    )
    cpu_joining = (
        None
        if host_cpu_start is None or host_cpu_joined is None
        else (host_cpu_joined - host_cpu_start) / max(all_joined - began, 1e-9) * 100
    )
    guest_cpu = [
        (b - a)
        for a, b in zip(guest_cpu_joined, guest_cpu_end, strict=True)
        if a is not None and b is not None
    ]
    unexpected_ends = [
        g.index
        for g in guests
        if (g.ended_at is not None and g.ended_at < finished)
        or (g.gone.is_set() and g.ended_at is None)
    ]
    return {
        "scenario": name,
        "guests_wanted": count,
        "guests_joined": len(joined),
        "guests_measured": len(measured),
        "joining_s": round(all_joined - began, 2),
        "run_s": round(run_s, 2),
        "load_before": load_before,
        "load_after": load_after,
        "host_offset_us": host.offset_us,
        "host_ready": host.ready,
        "host_cpu_percent_run": None if cpu_run is None else round(cpu_run, 2),
        "host_cpu_percent_joining": None if cpu_joining is None else round(cpu_joining, 2),
        "guests_cpu_percent_run_sum": round(sum(guest_cpu) / run_s * 100, 2),
        "worst_median_us": max((r["abs_error_us"]["median"] for r in measured), default=None),
        "worst_p99_us": max((r["abs_error_us"]["p99"] for r in measured), default=None),
        "pooled_abs_error_us": spread(pooled),
        "first_abs_error_us": spread([float(v) for v in firsts]),
        "reports_in_window": sum(r["reports_in_window"] for r in per_guest),
        "reports_expected": sum(r["reports_expected"] for r in per_guest),
        "reconnects": sum(1 for r in per_guest for _, s in r["states"] if s == "reconnecting"),
        "unexpected_ends": unexpected_ends,
        "proxy": None
        if proxy is None
        else {
            "max_delay_ms": plan.max_delay_ms,
            "seed": plan.seed,
            "applied_ms": {
                k: {"summary": spread(v), "samples": v} for k, v in proxy.applied_ms.items()
            },
        },
        "host_log": host.log,
        "guests": per_guest,
    }


# Report -----------------------------------------------------------------------------


def rows(result: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for name, s in result["scenarios"].items():
        if name == "quiet":
            label, (t50, t99) = "Quiet loopback, 1 guest", QUIET_TARGET
        elif name == "proxy":
            label = f"Proxy 0-{s['proxy']['max_delay_ms']:g} ms each way, 1 guest"
            t50, t99 = PROXY_TARGET
        else:
            label, (t50, t99) = f"{s['guests_wanted']} guests at once", QUIET_TARGET
        incomplete = s["guests_measured"] < s["guests_wanted"]
        many = s["guests_wanted"] > 1
        if many:
            out.append(
                Row(
                    f"{label}: guests joined / measured",
                    f"{s['guests_wanted']}",
                    f"{s['guests_joined']} / {s['guests_measured']}",
                    not incomplete,
                )
            )
        which = "worst guest's " if many else ""
        for stat, limit in (("median", t50), ("p99", t99)):
            value = s[f"worst_{stat}_us"]
            ok = within(value, limit)
            out.append(
                Row(
                    f"{label}: {which}{stat} |error|",
                    f"≤ {limit:g} µs",
                    us(value),
                    None if ok is None else ok and not incomplete,
                )
            )
        first = s["first_abs_error_us"]
        worst_first = None if first is None else first["max"]
        ok = within(worst_first, FIRST_TARGET)
        out.append(
            Row(
                f"{label}: first estimate |error|" + (" (worst guest)" if many else ""),
                f"≤ {FIRST_TARGET:g} µs",
                us(worst_first),
                None if ok is None else ok and not incomplete,
            )
        )
        if name == "crowd":
            cpu = s["host_cpu_percent_run"]
            out.append(
                Row(
                    f"{label}: host CPU % over the {s['run_s']:.0f} s run",
                    "",
                    "-" if cpu is None else f"{cpu:.1f} %",
                    None,
                )
            )
    return out


def notes(result: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, s in result["scenarios"].items():
        got, want = s["reports_in_window"], s["reports_expected"]
        line = (
            f"{name}: {got} clock reports in the windows (~{want} expected, 1/s), "
            f"load {s['load_before']} -> {s['load_after']}"
        )
        if s["pooled_abs_error_us"] is not None and s["guests_wanted"] > 1:
            p = s["pooled_abs_error_us"]
            line += f"; all guests pooled: median {p['median']:g} µs, p99 {p['p99']:g} µs"
        if name == "crowd":
            line += (
                f"; joining took {s['joining_s']:g} s (host CPU "
                f"{s['host_cpu_percent_joining']} % meanwhile); the guests' processes used "
                f"{s['guests_cpu_percent_run_sum']:g} % of a core together during the run"
            )
        if s["proxy"] is not None:
            for k, v in s["proxy"]["applied_ms"].items():
                a = v["summary"]
                if a is not None:
                    line += (
                        f"; delays applied {k}: {a['n']} chunks, "
                        f"median {a['median']:g} ms, max {a['max']:g} ms"
                    )
        out.append(line)
        if s["guests_joined"] < s["guests_wanted"]:
            out.append(
                f"{name}: only {s['guests_joined']} of {s['guests_wanted']} guests joined "
                f"within {JOIN_TIMEOUT_S:g} s: too heavy for this machine, or refused; "
                "figures cover the guests that joined"
            )
        if want and got < 0.9 * want:
            out.append(f"{name}: fewer clock reports than expected: the machine is overloaded")
        if s["reconnects"] or s["unexpected_ends"]:
            out.append(
                f"{name}: {s['reconnects']} reconnect(s); guests that ended early: "
                f"{s['unexpected_ends']}"
            )
    return out


def table(result: dict[str, Any]) -> Table:
    m = result["machine"]
    return figures_table(
        title=f"LOUDSYNC session clock ({'quick' if result['quick'] else 'full'}: "
        f"{result['plan']['duration_s']:g} s after a {WARMUP_S:g} s warm-up) on "
        f"{m['nproc']} cores, {m['cpu']}, Python {m['python']}",
        caption=(
            "error = guest offsetUs - host sessionClockOffsetUs, one report a second a guest. "
            f"Load average (1, 5, 15 min) at start / end of measuring / after stopping "
            f"every process: {m['loadavg_before']} / {m['loadavg_end_of_measuring']} / "
            f"{m['loadavg_after']}."
        ),
        rows=rows(result),
    )


# Main -------------------------------------------------------------------------------


async def measure(plan: Plan, children: Children, console: Console) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="loudsync-clock-") as tmp:
        try:
            for name in plan.scenarios:
                console.log(f"{name}…")
                out[name] = await run_scenario(name, plan, children, Path(tmp), console)
        finally:
            await children.stop_all()
    return out


async def _main_async(plan: Plan, children: Children, console: Console) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # SIGINT: asyncio.run cancels
    return await measure(plan, children, console)


def parse_plan(argv: list[str] | None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.clock",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_DURATION_S:g} s a scenario, {QUICK_GUESTS} guests in the crowd",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"measured seconds a scenario, after the warm-up (default: {FULL_DURATION_S:g})",
    )
    parser.add_argument(
        "--guests",
        type=int,
        default=None,
        help=f"guests in the crowd scenario (default: {FULL_GUESTS})",
    )
    parser.add_argument(
        "--max-delay-ms",
        type=float,
        default=5.0,
        help="the proxy's largest delay per chunk (default: 5)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the proxy's random seed")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default: {','.join(SCENARIOS)})",
    )
    parser.add_argument("--output", type=Path, default=None, help="where to write JSON")
    args = parser.parse_args(argv)
    scenarios = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown or not scenarios:
        parser.error(f"unknown scenario(s): {sorted(unknown)}; choose from {SCENARIOS}")
    duration = args.duration or (QUICK_DURATION_S if args.quick else FULL_DURATION_S)
    guests = args.guests or (QUICK_GUESTS if args.quick else FULL_GUESTS)
    if duration <= 0 or guests < 1:
        parser.error("--duration and --guests must be positive")
    return Plan(duration, guests, args.max_delay_ms, args.seed, scenarios), args


def main(argv: list[str] | None = None) -> int:
    plan, args = parse_plan(argv)
    console = Console(stderr=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output: Path = args.output or RESULTS_DIR / f"clock-{stamp}.json"
    started = time.monotonic()
    result: dict[str, Any] = {
        "command": "python -m benchmarks.clock " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": machine(),
        "plan": plan.__dict__,
        "warmup_s": WARMUP_S,
        "targets_us": {
            "quiet": QUIET_TARGET,
            "proxy": PROXY_TARGET,
            "crowd": QUIET_TARGET,
            "first": FIRST_TARGET,
        },
    }
    children = Children()
    try:
        result["scenarios"] = asyncio.run(_main_async(plan, children, console))
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("interrupted: every process stopped, nothing written")
        return 130
    finally:
        children.kill_all_now()
    last = list(result["scenarios"].values())[-1]
    result["machine"]["loadavg_end_of_measuring"] = last["load_after"]
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["checks"] = [row.__dict__ for row in rows(result)]
    result["notes"] = notes(result)
    publish(result, table(result), result["notes"], output, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
