"""Run every benchmark, print one table against the targets, write JSON.

    python -m benchmarks            # full run, about 2 minutes on 2 cores
    python -m benchmarks --quick    # smaller levels, for a quick look (~30 s)

Results go to benchmarks/results/latest.json (git-ignored) unless `--output` says
otherwise. Not part of the test suite: timings need a quiet machine, tests do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import idle, netbench, ui

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


@dataclass(frozen=True)
class Plan:
    levels: list[int]
    rounds: dict[int, int]
    workers: int
    ui_members: int
    ui_repeats: int


FULL = Plan([10, 100, 1000], {10: 200, 100: 100, 1000: 40}, 4, 1000, 5)
QUICK = Plan([10, 100], {10: 60, 100: 30}, 2, 1000, 2)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
    }


@dataclass
class Row:
    scenario: str
    ours: str
    baseline: str
    ratio: str
    target: str
    ok: bool | None


def _ms(summary: dict[str, Any] | None) -> str:
    return "-" if summary is None else f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f}"


def _ratio(ours: float, bare: float) -> float:
    return ours / bare if bare > 0 else float("inf")


def rows(result: dict[str, Any], plan: Plan) -> list[Row]:
    out: list[Row] = []
    net = result["net"]
    ours, bare = net["ours"]["levels"], net["bare"]["levels"]
    top = max(plan.levels)
    join_targets = {10: 20.0, 1000: 100.0}
    fanout_targets = {1000: 100.0}
    for kind, targets in (("join", join_targets), ("fanout", fanout_targets)):
        for level in plan.levels:
            o, b = ours[level][kind], bare[level][kind]
            if o is None or b is None:
                out.append(Row(f"{kind} @{level} guests", "incomplete", "", "", "", False))
                continue
            r50 = _ratio(o["p50_ms"], b["p50_ms"])
            r99 = _ratio(o["p99_ms"], b["p99_ms"])
            limit = targets.get(level)
            target = "p50 ≤1.2x bare" + (f", p99 <{limit:g} ms" if limit else "")
            ok = r50 <= 1.2 and (limit is None or o["p99_ms"] < limit)
            name = "Join" if kind == "join" else "Fan-out"
            out.append(
                Row(
                    f"{name} p50 / p99 ms, {level} guests",
                    _ms(o),
                    _ms(b),
                    f"{r50:.2f} / {r99:.2f}",
                    target,
                    ok,
                )
            )
    o_mem, b_mem = ours[top]["rss_per_guest_kib"], bare[top]["rss_per_guest_kib"]
    mem_ratio = _ratio(o_mem, b_mem)
    out.append(
        Row(
            f"Host RSS KiB per guest, {ours[top]['added']} added to reach {top}",
            f"{o_mem:.1f}",
            f"{b_mem:.1f}",
            f"{mem_ratio:.2f}",
            "≤1.2x bare",
            mem_ratio <= 1.2,
        )
    )
    missed = sum(lv["missed_deliveries"] for lv in ours.values())
    out.append(
        Row(
            f"{top} guests on one host",
            f"{top} joined, {missed} missed",
            "",
            "",
            "1,000 guests",
            None if top < 1000 else missed == 0,
        )
    )
    idle_result = result["idle"]
    for kind, label in (("deflate", "permessage-deflate"), ("plain", "no compression")):
        bps = idle_result[kind]["bytes_per_s_per_guest"]
        out.append(Row(f"Idle B/s per guest ({label})", f"{bps:.1f}", "", "", "≤60", bps <= 60))
    u = result["ui"]
    out.append(
        Row(
            f"UI: {u['updates']} updates on {u['members']} rows, to drawn, ms (max)",
            f"{u['burst_drawn_ms_max']:.0f}",
            "",
            "",
            "",
            None,
        )
    )
    out.append(
        Row(
            "UI: key press to frame during burst, ms (max)",
            f"{u['key_to_frame_ms_max']:.0f}",
            "",
            "",
            "<100",
            u["key_to_frame_ms_max"] < 100,
        )
    )
    return out


def table(result: dict[str, Any], plan: Plan) -> Table:
    m = result["machine"]
    t = Table(
        title=f"LOUDSYNC benchmarks ({'quick' if result['quick'] else 'full'}) on "
        f"{m['nproc']} cores, {m['cpu']}, Python {m['python']}",
        caption=(
            f"Both servers in their own processes; guests spread over {plan.workers} "
            "load-generator processes; the prober alternates rounds between the servers. "
            "Ratio = ours / bare "
            f"(p50 / p99). Load average before/after: {m['loadavg_before']} / "
            f"{m['loadavg_after']}."
        ),
    )
    for name, justify in (
        ("scenario", "left"),
        ("ours", "right"),
        ("bare websockets", "right"),
        ("ratio", "right"),
        ("target", "left"),
        ("", "center"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows(result, plan):
        mark = "" if row.ok is None else ("[green]pass[/]" if row.ok else "[red]miss[/]")
        t.add_row(row.scenario, row.ours, row.baseline, row.ratio, row.target, mark)
    return t


def _timed(label: str, console: Console, fn: Callable[[], Any]) -> Any:
    started = time.monotonic()
    console.log(f"{label}…")
    result = fn()
    console.log(f"{label}: {time.monotonic() - started:.1f} s")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller levels, fewer rounds")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write JSON")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    console = Console(stderr=True)
    started = time.monotonic()
    result: dict[str, Any] = {
        "command": "python -m benchmarks" + (" --quick" if args.quick else ""),
        "quick": args.quick,
        "machine": machine(),
        "plan": {"levels": plan.levels, "rounds": plan.rounds, "workers": plan.workers},
    }
    result["net"] = _timed(
        "join, fan-out, memory (bare, then ours)",
        console,
        lambda: asyncio.run(netbench.run(plan.levels, plan.rounds, plan.workers)),
    )
    result["idle"] = _timed(
        "idle traffic", console, lambda: asyncio.run(idle.measure(quick=args.quick))
    )
    result["ui"] = _timed(
        "UI burst",
        console,
        lambda: asyncio.run(ui.measure(plan.ui_members, plan.ui_members, repeats=plan.ui_repeats)),
    )
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["checks"] = [row.__dict__ for row in rows(result, plan)]
    out = Console()
    if not out.is_terminal:
        out = Console(width=150)
    out.print(table(result, plan))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"took {result['duration_s']} s; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
