"""Run every benchmark, print one table against the targets, write JSON.

    python -m benchmarks                # full run: 10, 100, 1,000 guests, ws:// and wss://
    python -m benchmarks --quick        # smaller levels, for a quick look
    python -m benchmarks --huge         # the full run and 5,000 guests (about half an hour)
    python -m benchmarks --guests 5000  # only these levels (idle traffic and UI as ever)
    python -m benchmarks --note "loaded: pytest running"   # say how the machine was

Every network figure is taken over plain `ws://` and over `wss://` (TLS, the CLI's
default), for our host and the bare baseline, in the same run. Results go to
benchmarks/results/latest.json (git-ignored) unless `--output` says otherwise. Not part
of the test suite: timings need a quiet machine, tests do not; the table's caption
gives the load average before and after, and how much CPU other processes took.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks import idle, netbench, ui

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
HUGE = 5000
IDLE_LIMIT_S = 300.0
"""The idle-traffic part takes under a minute; past this it is cut off and reported as
failed (it once hung after a 5,000-guest run, cause unknown), so the UI part still runs."""


@dataclass(frozen=True)
class Plan:
    levels: list[int]
    rounds: dict[int, int]
    workers: int
    ui_members: int
    ui_repeats: int


FULL = Plan([10, 100, 1000], {10: 200, 100: 100, 1000: 40, HUGE: 20}, 4, 1000, 5)
QUICK = Plan([10, 100], {10: 60, 100: 30}, 2, 1000, 2)


def rounds_for(level: int) -> int:
    """Probe rounds at a level no plan names: fewer as each round gets longer."""
    return 200 if level <= 10 else 100 if level <= 100 else 40 if level <= 1000 else 20


def _cpu_stat_s() -> tuple[float, float]:
    """Since boot, in seconds over all cores: (time the cores were busy: user, nice,
    system, irq, softirq; time the hypervisor took, steal). A process's own CPU time
    includes the interrupt and softirq work done on its behalf (loopback traffic), so both
    are counted in the busy time."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
    return busy / tick, fields[7] / tick


def _own_cpu_s() -> float:
    """CPU time of this process and of the children it has waited for (servers, workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def machine(note: str | None = None) -> dict[str, Any]:
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
        "note": note,
        "loadavg_before": [round(x, 2) for x in os.getloadavg()],
        "cpu_stat_before_s": _cpu_stat_s(),
        "own_cpu_before_s": _own_cpu_s(),
    }


def finish_machine(m: dict[str, Any], wall_s: float) -> None:
    """Load average after, and the CPU that processes other than this benchmark took."""
    m["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    busy_before, steal_before = m.pop("cpu_stat_before_s")
    busy_after, steal_after = _cpu_stat_s()
    busy = busy_after - busy_before
    own = _own_cpu_s() - m.pop("own_cpu_before_s")
    others = max(0.0, busy - own)
    cores = m["nproc"] or 1
    m["cpu_busy_s"] = round(busy, 1)
    m["benchmark_cpu_s"] = round(own, 1)
    m["other_cpu_s"] = round(others, 1)
    m["other_cpu_share"] = round(others / (wall_s * cores), 3) if wall_s > 0 else None
    m["steal_share"] = (
        round((steal_after - steal_before) / (wall_s * cores), 3) if wall_s > 0 else None
    )


def load_summary(m: dict[str, Any]) -> str:
    """One sentence on how loaded the machine was, for the caption and the notes."""
    before, after = m["loadavg_before"], m.get("loadavg_after")
    text = f"Load average (1/5/15 min) before {' '.join(f'{x:g}' for x in before)}"
    if after is not None:
        text += f", after {' '.join(f'{x:g}' for x in after)}"
    share = m.get("other_cpu_share")
    if share is not None:
        text += (
            f"; other processes took {m['other_cpu_s']:g} CPU-s during the run "
            f"({share * 100:.0f}% of {m['nproc']} cores)"
        )
    steal = m.get("steal_share")
    if steal and steal >= 0.01:
        text += f"; the hypervisor took {steal * 100:.0f}% (steal)"
    # The load average lags (a run just before this one still shows in it); the CPU that
    # others took during the run says more, once it is known.
    busy = share > 0.1 if share is not None else before[0] > 0.5 * (m["nproc"] or 1)
    if m.get("note"):
        text += f". Note: {m['note']}"
    elif busy:
        text += ". Other processes kept the machine busy: the tails are sensitive to load"
    return text + "."


@dataclass
class Row:
    scenario: str
    transport: str
    ours: str
    baseline: str
    ratio: str
    tls_cost: str
    target: str
    ok: bool | None


def _ms(summary: dict[str, Any] | None) -> str:
    return "-" if summary is None else f"{summary['p50_ms']:.1f} / {summary['p99_ms']:.1f}"


def _ratio(ours: float, bare: float) -> float:
    return ours / bare if bare > 0 else float("inf")


def _levels(net: dict[str, Any], transport: str, kind: str) -> dict[int, Any]:
    """A server's levels keyed by int (JSON written and read back has them as str)."""
    return {int(k): v for k, v in net[transport][kind]["levels"].items()}


def _wss_over_ws(net: dict[str, Any], level: int, kind: str) -> str:
    """Ours over TLS against ours plain, p50 / p99: what TLS costs our host."""
    try:
        tls = _levels(net, "wss", "ours")[level][kind]
        plain = _levels(net, "ws", "ours")[level][kind]
    except KeyError:
        return ""
    if tls is None or plain is None:
        return ""
    r50 = _ratio(tls["p50_ms"], plain["p50_ms"])
    r99 = _ratio(tls["p99_ms"], plain["p99_ms"])
    return f"{r50:.2f} / {r99:.2f}"


def _wss_over_ws_value(net: dict[str, Any], level: int, key: str) -> str:
    try:
        tls = _levels(net, "wss", "ours")[level][key]
        plain = _levels(net, "ws", "ours")[level][key]
    except KeyError:
        return ""
    return "" if not tls or not plain else f"{_ratio(tls, plain):.2f}"


def net_rows(net: dict[str, Any], levels: list[int]) -> list[Row]:
    out: list[Row] = []
    transports: list[str] = net["transports"]
    has_bare = "bare" in net.get("kinds", netbench.KINDS)
    skipped = {int(k): v for k, v in net.get("skipped_levels", {}).items()}
    ran = [lv for lv in levels if lv not in skipped]
    join_targets = {10: 20.0, 1000: 100.0}
    fanout_targets = {1000: 100.0}
    for kind, targets in (("join", join_targets), ("fanout", fanout_targets)):
        name = "Join" if kind == "join" else "Fan-out"
        for level in ran:
            for transport in transports:
                o = _levels(net, transport, "ours")[level][kind]
                b = _levels(net, transport, "bare")[level][kind] if has_bare else None
                scenario = f"{name} p50 / p99 ms, {level:,} guests"
                if o is None or (has_bare and b is None):
                    out.append(Row(scenario, transport, "incomplete", "", "", "", "", False))
                    continue
                limit = targets.get(level)
                target = "p50 ≤1.2x bare" if has_bare else ""
                target += (", " if target and limit else "") + (
                    f"p99 <{limit:g} ms" if limit else ""
                )
                ok: bool | None = limit is None or o["p99_ms"] < limit
                ratio = ""
                if b is not None:
                    r50 = _ratio(o["p50_ms"], b["p50_ms"])
                    r99 = _ratio(o["p99_ms"], b["p99_ms"])
                    ratio = f"{r50:.2f} / {r99:.2f}"
                    ok = ok and r50 <= 1.2
                elif limit is None:
                    ok = None
                out.append(
                    Row(
                        scenario,
                        transport,
                        _ms(o),
                        _ms(b) if has_bare else "not run",
                        ratio,
                        _wss_over_ws(net, level, kind) if transport == "wss" else "",
                        target,
                        ok,
                    )
                )
    big = [lv for lv in ran if lv >= 1000] or ran[-1:]
    for level in big:
        for transport in transports:
            o = _levels(net, transport, "ours")[level].get("fanout_read")
            b = _levels(net, transport, "bare")[level].get("fanout_read") if has_bare else None
            if o is None:
                continue
            out.append(
                Row(
                    f"Fan-out p50 / p99 ms, {level:,} guests, until the load processes read it",
                    transport,
                    _ms(o),
                    _ms(b) if has_bare else "not run",
                    "",
                    "",
                    "",
                    None,
                )
            )
    for level in big:
        for transport in transports:
            o = _levels(net, transport, "ours")[level]
            b = _levels(net, transport, "bare")[level] if has_bare else {}
            o_mem, b_mem = o["rss_per_guest_kib"], b.get("rss_per_guest_kib")
            scenario = f"Host RSS KiB per guest, +{o['added']:,} to {level:,}"
            cost = _wss_over_ws_value(net, level, "rss_per_guest_kib") if transport == "wss" else ""
            if o_mem is None or b_mem is None:
                shown = "-" if o_mem is None else f"{o_mem:.1f}"
                other = "-" if has_bare else "not run"
                out.append(Row(scenario, transport, shown, other, "", cost, "", None))
                continue
            mem_ratio = _ratio(o_mem, b_mem)
            out.append(
                Row(
                    scenario,
                    transport,
                    f"{o_mem:.1f}",
                    f"{b_mem:.1f}",
                    f"{mem_ratio:.2f}",
                    cost,
                    "≤1.2x bare",
                    mem_ratio <= 1.2,
                )
            )
    for level in big:
        for transport in transports:
            o = _levels(net, transport, "ours")[level]
            b = _levels(net, transport, "bare")[level] if has_bare else None
            out.append(
                Row(
                    f"{level:,} guests on one host: joined, missed",
                    transport,
                    _held(o, level),
                    "not run" if b is None else _held(b, level),
                    "",
                    "",
                    f"all {level:,} joined, none missed",
                    None
                    if level < 1000
                    else o["joined"] >= level and o.get("missed_deliveries", 0) == 0,
                )
            )
    for level, why in skipped.items():
        out.append(Row(f"{level:,} guests: not run", "", why, "", "", "", "", False))
    return out


def _held(figures: dict[str, Any], level: int) -> str:
    joined = figures.get("joined", level)
    text = f"{joined:,} of {level:,}, {figures.get('missed_deliveries', 0)} missed"
    if figures.get("join_failures"):
        text += f" ({figures['join_failures']} joins failed)"
    return text


def rows(result: dict[str, Any], plan: Plan) -> list[Row]:
    out = net_rows(result["net"], plan.levels)
    idle_result = result["idle"]
    if "error" in idle_result:
        out.append(Row("Idle B/s per guest", "", "failed", "", "", "", "≤60", False))
    for variant, label in (("deflate", "permessage-deflate"), ("plain", "no compression")):
        for transport in result["net"]["transports"]:
            figures = idle_result.get(transport, {}).get(variant)
            if figures is None:
                continue
            bps = figures["bytes_per_s_per_guest"]
            cost = ""
            if transport == "wss" and "ws" in idle_result:
                cost = f"{_ratio(bps, idle_result['ws'][variant]['bytes_per_s_per_guest']):.2f}"
            out.append(
                Row(
                    f"Idle B/s per guest ({label})",
                    transport,
                    f"{bps:.1f}",
                    "",
                    "",
                    cost,
                    "≤60",
                    bps <= 60,
                )
            )
    u = result["ui"]
    if "error" in u:
        out.append(Row("UI burst and key press", "", "failed", "", "", "", "", False))
        return out
    out.append(
        Row(
            f"UI: {u['updates']} updates on {u['members']} rows, to drawn, ms (max)",
            "",
            f"{u['burst_drawn_ms_max']:.0f}",
            "",
            "",
            "",
            "",
            None,
        )
    )
    out.append(
        Row(
            "UI: key press to frame during burst, ms (max)",
            "",
            f"{u['key_to_frame_ms_max']:.0f}",
            "",
            "",
            "",
            "<100",
            u["key_to_frame_ms_max"] < 100,
        )
    )
    return out


def notes(result: dict[str, Any]) -> list[str]:
    """What the table cannot say in a cell: limits, TLS parameters, failures, load."""
    net = result["net"]
    out = [load_summary(result["machine"])]
    files = net.get("open_files")
    if files:
        gens = sorted({tuple(x) for x in files["load_generators"]})
        servers = ", ".join(f"{k} {v}" for k, v in files["servers"].items())
        out.append(
            "Open-files limits (soft, hard): load generators "
            + ", ".join(f"{s} / {h}" for s, h in gens)
            + f"; servers (soft) {servers}."
        )
    nice = net.get("nice")
    if nice:
        out.append(
            "Nice values: "
            + ", ".join(f"{k} {v}" for k, v in nice.items())
            + (
                " (our host asked for -11, as users run it)."
                if result["plan"].get("raised_priority")
                else " (our host with --normal-priority)."
            )
        )
    for level, why in net.get("skipped_levels", {}).items():
        out.append(f"{int(level):,} guests not run: {why}.")
    tls = None
    for transport in net["transports"]:
        for kind in net.get("kinds", netbench.KINDS):
            for level, figures in _levels(net, transport, kind).items():
                tls = tls or figures.get("tls")
                if figures.get("join_failures"):
                    out.append(
                        f"{kind} {transport} at {level:,}: {figures['join_failures']} joins "
                        f"failed, first: {figures['first_join_failure']}."
                    )
    if tls:
        out.append(
            f"wss: {tls['version']}, {tls['cipher']}; P-256 self-signed certificates; "
            "clients do not verify (loopback). Join time over wss includes the TLS handshake."
        )
    for part, label in (("idle", "Idle traffic"), ("ui", "The UI benchmark")):
        if "error" in result[part]:
            out.append(f"{label} failed: {result[part]['error']}.")
    if "wss" in result["idle"]:
        out.append(
            "Idle over wss counts TLS records (each frame encrypted, with record header and "
            "tag); the no-compression wss guests go through a TLS relay that strips the offer."
        )
    return out


def table(result: dict[str, Any], plan: Plan) -> Table:
    m = result["machine"]
    net = result["net"]
    t = Table(
        title=f"LOUDSYNC benchmarks ({result['mode']}) on "
        f"{m['nproc']} cores, {m['cpu']}, Python {m['python']}",
        caption=escape(
            f"Servers in their own processes ({' and '.join(net.get('kinds', ['ours', 'bare']))}"
            f", over {' and '.join(net['transports'])}); guests spread over {net['workers']} "
            "load-generator processes; the prober goes round the servers round by round. "
            "Ratio = ours / bare (p50 / p99); ours wss/ws = what TLS costs our host. "
            f"{load_summary(m)}"
        ),
    )
    for name, justify in (
        ("scenario", "left"),
        ("transport", "center"),
        ("ours", "right"),
        ("bare websockets", "right"),
        ("ours / bare", "right"),
        ("ours wss/ws", "right"),
        ("target", "left"),
        ("", "center"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in rows(result, plan):
        mark = "" if row.ok is None else ("[green]pass[/]" if row.ok else "[red]miss[/]")
        t.add_row(
            escape(row.scenario),
            row.transport,
            escape(row.ours),
            escape(row.baseline),
            row.ratio,
            row.tls_cost,
            escape(row.target),
            mark,
        )
    return t


def _timed(
    label: str, console: Console, fn: Callable[[], Any], stacks_after_s: float = 3600
) -> Any:
    """Run one part; if it is still running after `stacks_after_s` (and every as long
    again), print every thread's stack: a part that hangs says where."""
    started = time.monotonic()
    console.log(f"{label}…")
    faulthandler.dump_traceback_later(stacks_after_s, repeat=True)
    try:
        result = fn()
    finally:
        faulthandler.cancel_dump_traceback_later()
    console.log(f"{label}: {time.monotonic() - started:.1f} s")
    return result


def _survived(
    label: str, console: Console, fn: Callable[[], dict[str, Any]], stacks_after_s: float = 300
) -> dict[str, Any]:
    """A part whose failure should not lose the others' figures: {"error": why} instead."""
    try:
        result: dict[str, Any] = _timed(label, console, fn, stacks_after_s)
    except Exception as exc:
        console.log(f"{label} failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}
    return result


def _levels_arg(text: str) -> list[int]:
    try:
        levels = sorted({int(x.replace("_", "")) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("guest counts are 1 or more")
    return levels


def plan_from(args: argparse.Namespace) -> tuple[Plan, str]:
    base = QUICK if args.quick else FULL
    levels = list(args.guests) if args.guests else list(base.levels)
    if args.huge and HUGE not in levels:
        levels.append(HUGE)
    rounds = {lv: base.rounds.get(lv, rounds_for(lv)) for lv in levels}
    mode = "quick" if args.quick else "full"
    if args.guests:
        mode += ", guests " + ", ".join(f"{lv:,}" for lv in levels)
    elif args.huge:
        mode += f" + {HUGE:,} guests"
    return Plan(levels, rounds, base.workers, base.ui_members, base.ui_repeats), mode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller levels, fewer rounds")
    parser.add_argument(
        "--huge",
        action="store_true",
        help=f"add the {HUGE:,}-guest level: each server grows to it in turn, and each join "
        "is announced to everyone in (12.5 million frames a server): on 2 cores an estimated "
        "half an hour for the four servers, 18 minutes with --ours-only",
    )
    parser.add_argument(
        "--guests",
        type=_levels_arg,
        metavar="N[,N...]",
        help="the guest levels to run instead of the plan's (e.g. 5000)",
    )
    parser.add_argument(
        "--transport",
        choices=("both", "ws", "wss"),
        default="both",
        help="plain ws://, TLS wss://, or both side by side (default)",
    )
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="measure our host alone, without the bare baseline: no ratios, half the time "
        "(for a huge level)",
    )
    parser.add_argument(
        "--raised-priority",
        action="store_true",
        help="run our host at the priority it asks for where allowed (nice -11; it gets "
        "it as root), as users run it; by default it runs with --normal-priority, at the "
        "baseline's",
    )
    parser.add_argument(
        "--note",
        help='how the machine was, printed with the results (e.g. "loaded: pytest running")',
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write JSON")
    args = parser.parse_args(argv)
    plan, mode = plan_from(args)
    transports = netbench.TRANSPORTS if args.transport == "both" else (args.transport,)
    kinds = ("ours",) if args.ours_only else netbench.KINDS
    console = Console(stderr=True)
    started = time.monotonic()
    given = sys.argv[1:] if argv is None else argv
    result: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "benchmarks", *given]),
        "quick": args.quick,
        "mode": mode,
        "machine": machine(args.note),
        "plan": {
            "levels": plan.levels,
            "rounds": plan.rounds,
            "workers": plan.workers,
            "transports": list(transports),
            "kinds": list(kinds),
            "raised_priority": args.raised_priority,
        },
    }
    result["net"] = _timed(
        f"join, fan-out, memory ({' and '.join(transports)}; {' and '.join(kinds)})",
        console,
        lambda: asyncio.run(
            netbench.run(
                plan.levels,
                plan.rounds,
                plan.workers,
                transports,
                kinds,
                log=console.log,
                raised_priority=args.raised_priority,
            )
        ),
    )
    result["idle"] = _survived(
        "idle traffic",
        console,
        lambda: asyncio.run(
            asyncio.wait_for(idle.measure(quick=args.quick, transports=transports), IDLE_LIMIT_S)
        ),
    )
    result["ui"] = _survived(
        "UI burst",
        console,
        lambda: asyncio.run(ui.measure(plan.ui_members, plan.ui_members, repeats=plan.ui_repeats)),
    )
    result["duration_s"] = round(time.monotonic() - started, 1)
    finish_machine(result["machine"], result["duration_s"])
    result["checks"] = [row.__dict__ for row in rows(result, plan)]
    result["notes"] = notes(result)
    out = Console()
    if not out.is_terminal:
        out = Console(width=170)
    out.print(table(result, plan))
    for line in result["notes"]:
        out.print(f"- {line}", highlight=False, markup=False, soft_wrap=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"took {result['duration_s']} s; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
