"""The session clock's estimator in a modelled network, many runs in a few seconds.

`python -m benchmarks.clock` measures real processes, one proxy run at a time; a run's
figure depends on the delays it happened to draw. This feeds `ClockEstimator` the
exchanges a guest makes, probing as it probes (`GuestSession`: a burst of 15 pairs in
the first second, then a pair every 10 s while idle or every second while music
plays), through legs that vary apart: each leg 150 µs plus its own uniform 0-N ms, as
the benchmark's proxy delays them. Each run is scored like a benchmark run (median and
worst |error| from 3 s to 63 s, once a second), over many seeds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.clock import PROXY_TARGET
from benchmarks.report import RESULTS_DIR, Row, figures_table, publish, us
from loudsync_tui.core.clock_sync import ClockEstimator, ClockSample

SECOND = 1_000_000
OFFSET_US = 123_456_789
"""The true session-minus-local offset of every run."""
BASE_US = 150
HOLD_US = 20
MEDIAN_TARGET_US, WORST_TARGET_US = PROXY_TARGET


@dataclass(frozen=True)
class Scenario:
    name: str
    gap_s: float
    """Seconds between probe pairs after the burst."""
    jitter_ms: float


SCENARIOS = (
    Scenario("idle, 0-5 ms legs (the benchmark's proxy)", 10.0, 5.0),
    Scenario("playing, 0-5 ms legs", 1.0, 5.0),
    Scenario("idle, 0-2 ms legs", 10.0, 2.0),
    Scenario("idle, 0-0.5 ms legs", 10.0, 0.5),
)


def one_run(scenario: Scenario, seed: int) -> tuple[float, float]:
    """(median, worst) |error| of one simulated guest, µs."""
    rng = random.Random(seed)
    jitter = scenario.jitter_ms * 1000

    def exchange(local_us: float) -> ClockSample:
        up = BASE_US + rng.uniform(0, jitter)
        down = BASE_US + rng.uniform(0, jitter)
        t1 = round(local_us)
        t2 = round(local_us + up + OFFSET_US)
        return ClockSample(t1, t2, t2 + HOLD_US, round(local_us + up + HOLD_US + down))

    leads = [i * SECOND / 15 for i in range(15)]
    at = SECOND + 0.0
    while at < 64 * SECOND:
        leads.append(at)
        at += scenario.gap_s * SECOND
    est = ClockEstimator()
    errors: list[float] = []
    measure_at = 3 * SECOND
    for lead in leads:
        while measure_at < lead and measure_at <= 63 * SECOND:
            session = est.session_time(measure_at)
            assert session is not None
            errors.append(abs(session - measure_at - OFFSET_US))
            measure_at += SECOND
        first = exchange(lead)
        est.add(first)
        est.add(exchange(first.t4 + 300))  # the follow-up, sent as the PONG lands
    return statistics.median(errors), max(errors)


def measure(scenario: Scenario, runs: int) -> dict[str, Any]:
    results = [one_run(scenario, seed) for seed in range(runs)]
    medians = sorted(m for m, _ in results)
    worsts = sorted(w for _, w in results)
    misses = sum(1 for m, w in results if m > MEDIAN_TARGET_US or w > WORST_TARGET_US)
    p90 = int(0.9 * runs)
    return {
        "scenario": scenario.name,
        "runs": runs,
        "median_of_medians_us": statistics.median(medians),
        "p90_median_us": medians[min(p90, runs - 1)],
        "p90_worst_us": worsts[min(p90, runs - 1)],
        "runs_missing_targets": misses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.clock_model", description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="seeds a scenario (default 200)")
    parser.add_argument("--output", type=Path, default=None, help="where to write JSON")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be positive")
    console = Console(stderr=True)
    started = time.monotonic()
    figures = [measure(s, args.runs) for s in SCENARIOS]
    rows = []
    for f in figures:
        name = f["scenario"]
        rows += [
            Row(f"{name}: median |error|, median run", "", us(f["median_of_medians_us"]), None),
            Row(f"{name}: median |error|, 90th-percentile run", "", us(f["p90_median_us"]), None),
            Row(f"{name}: worst |error|, 90th-percentile run", "", us(f["p90_worst_us"]), None),
            Row(
                f"{name}: runs missing ≤ {MEDIAN_TARGET_US:g} / ≤ {WORST_TARGET_US:g} µs",
                "",
                f"{f['runs_missing_targets']} of {f['runs']}",
                None,
            ),
        ]
    command = "python -m benchmarks.clock_model " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {
        "command": command.strip(),
        "figures": figures,
        "duration_s": round(time.monotonic() - started, 1),
    }
    table = figures_table(
        f"LOUDSYNC session clock in a modelled network ({args.runs} runs a scenario)",
        "Each leg 150 µs plus its own uniform 0-N ms; |error| from 3 s to 63 s after joining.",
        rows,
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    publish(result, table, [], args.output or RESULTS_DIR / f"clock_model-{stamp}.json", console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
