"""Synchronized playback, measured: how far apart real players sound, and what commands,
drift, late joins, long runs and a hundred listeners do to it.

    python -m benchmarks.sync                  # full: about 20 minutes (10 of them the soak)
    python -m benchmarks.sync --quick          # ~20 s a scenario, no soak: a few minutes
    python -m benchmarks.sync --only commands  # one scenario (comma-separated for several)
    python -m benchmarks.sync --rig jack       # the JACK rig (skew+500 for skew±500; no latencies)

Players run as users run them (`python -m loudsync_tui host|join --headless --json`) and
play into the PulseAudio rig (benchmarks/pulse_rig.py): player A into the left channel of
one recording, player B into the right, so B's offset from A is read to a few µs by
benchmarks/sync_analysis.py (cross-correlation of 100 ms windows, every 250 ms). The music is
75 s of noise, made once. Each scenario gets a fresh rig and runs alone. With `--rig jack`
they play into a JACK server on its dummy driver instead (benchmarks/jack_rig.py): through
PulseAudio, two plain players already miss each other by 77-310 µs before any code of ours
(`python -m benchmarks.rig_floor`); JACK's reports are closer to the truth, so what is left
is mostly ours. Results then go to benchmarks/results/sync-jack.json.

  two-guests     a host without local audio, guests A and B;
  host-vs-guest  the host's own output as A, one guest as B;
  skew±500       A's device runs 500 ppm fast, B's 500 ppm slow (unknown to the players);
  skew+500       both devices run 500 ppm fast (the JACK rig's one clock: its server runs
                 at 48,024 Hz, both players open it with --dac-skew-ppm 500); JACK only;
  latencies      A asks for an 8 ms device buffer, B for 120 ms;
  late-join      B joins 20 s after A started: its offset 2 s after joining, and later;
  commands       pause, play, seek +5 s from the host's stdin: both sides' transitions in the
                 recording (to a sample, from the players' 5 ms fades), A/B apart, and the
                 delay from the command to the sound (recording placed on the monotonic
                 clock from the file's growth: -20..+10 ms);
  soak           host and two guests for --minutes (default 10): underruns, CPU per guest;
  fanout         100 light receivers (raw WebSocket, benchmarks/wsclient.py) asking for
                 audio: how far ahead of its play time each chunk arrives, host CPU,
                 bandwidth.

Figures are taken after a settling time (10 s; --quick: 8 s) from the recording's start.
Raw numbers go to benchmarks/results/sync.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.jack_rig import JackRig, jack_unavailable_reason
from benchmarks.pulse_rig import PulseRig, pulse_unavailable_reason
from benchmarks.report import Row, figures_table, publish, us, within
from benchmarks.run import machine
from benchmarks.sync_analysis import WindowOffset, offsets, summary
from benchmarks.sync_session import (
    RATE,
    Host,
    Proc,
    Rig,
    Session,
    TimedRecording,
    Transition,
    cpu_seconds,
    make_noise,
    offsets_chunked,
    silent,
    transition,
    wait_playing,
)
from benchmarks.wsclient import WsClient
from loudsync_tui.protocol_audio import AudioFrameError, decode_frame

RESULTS = Path(__file__).resolve().parent / "results" / "sync.json"
MUSIC_S = 75.0
SYNC_TARGET_US = 100.0
LATE_JOIN_TARGET_US = 1000.0
COMMAND_DELAY_TARGET_MS = 300.0
CPU_TARGET_PERCENT = 5.0
LEAD_TARGET_MS = 100.0
MIN_QUALITY = 0.9
WEAK_QUALITY = 0.3
"""sync_analysis's bound: a window matching worse has no offset worth the name."""
HEARTBEAT_S = 2.0
"""The fan-out receivers' heartbeat: well inside the host's 15 s timeout."""
COMMAND_SEARCH_S = 1.5
"""A transition is looked for from the command's send time on, this long."""
SCENARIOS = (
    "two-guests",
    "host-vs-guest",
    "skew±500",
    "skew+500",
    "latencies",
    "late-join",
    "commands",
    "soak",
    "fanout",
)
ALIASES = {"skew": "skew±500", "skew500": "skew±500"}


@dataclass(frozen=True)
class Plan:
    quick: bool
    settle_s: float
    measure_s: float
    join_at_s: float
    after_join_s: float
    command_cycles: int
    soak_minutes: float
    receivers: int
    fanout_s: float
    scenarios: tuple[str, ...]
    rig: str = "pulse"


def make_plan(
    quick: bool, minutes: float, receivers: int, scenarios: tuple[str, ...], rig: str = "pulse"
) -> Plan:
    if quick:
        return Plan(True, 8.0, 12.0, 6.0, 14.0, 1, minutes, receivers, 15.0, scenarios, rig)
    return Plan(False, 10.0, 60.0, 20.0, 40.0, 4, minutes, receivers, 60.0, scenarios, rig)


RIGS = ("pulse", "jack")
NOT_ON = {
    "jack": ("skew±500", "latencies"),
    "pulse": ("skew+500",),
}
NOT_ON_WHY = {
    "jack": "PortAudio opens a JACK device at the server's rate only, and every client has "
    "the server's one period as its buffer",
    "pulse": "it is the JACK rig's form of skew±500",
}
SKEW_PPM = 500


def make_rig(kind: str, scenario: str) -> PulseRig | JackRig:
    if kind != "jack":
        return PulseRig()
    if scenario == "skew+500":
        return JackRig(rate=round(RATE * (1 + SKEW_PPM * 1e-6)))
    return JackRig()


def rig_unavailable_reason(kind: str) -> str | None:
    return jack_unavailable_reason() if kind == "jack" else pulse_unavailable_reason()


def _windows(offs: list[WindowOffset]) -> list[list[float]]:
    return [[round(o.time_s, 3), round(o.offset_us, 2), round(o.quality, 4)] for o in offs]


def _sync_fields(proc: Proc) -> dict[str, Any] | None:
    return proc.last("sync")


def sync_history(proc: Proc, since: float) -> list[list[float]]:
    """A player's sync events: [seconds since `since`, errorUs, underruns, bufferMs, rateRatio]."""
    return [
        [round(t - since, 2), o["errorUs"], o["underruns"], o["bufferMs"], o["rateRatio"]]
        for t, o in proc.of("sync")
    ]


def own_error(proc: Proc, since: float, after_s: float) -> dict[str, float] | None:
    """What a player itself reports (|errorUs| of its sync events) from `after_s` on."""
    errors = [abs(o["errorUs"]) for t, o in proc.of("sync") if t - since >= after_s]
    if not errors:
        return None
    return {"median": round(float(np.median(errors)), 1), "max": round(max(errors), 1)}


def trajectory(offs: list[WindowOffset], bin_s: float = 5.0) -> list[list[float]]:
    """[bin start s, median B-A µs] every `bin_s`: how the offset converges or wanders."""
    bins: dict[int, list[float]] = {}
    for o in offs:
        bins.setdefault(int(o.time_s // bin_s), []).append(o.offset_us)
    return [[k * bin_s, round(float(np.median(v)), 1)] for k, v in sorted(bins.items())]


def _underruns(proc: Proc) -> int | None:
    last = proc.last("sync")
    return None if last is None else int(last["underruns"])


# Scenarios with two players and a recording ------------------------------------------


@dataclass
class Pair:
    """What a two-player run leaves: the recording, its time map, the players' lines."""

    samples: np.ndarray[Any, Any]
    rec: TimedRecording
    a: Proc
    b: Proc
    host: Host
    started: float


def run_pair(
    rig: Rig,
    workdir: Path,
    music: Path,
    seconds: float,
    *,
    host_plays: bool = False,
    a_args: tuple[str, ...] = (),
    b_args: tuple[str, ...] = (),
    b_at: float = 0.0,
) -> Pair:
    """Host, A (left) and B (right, started `b_at` s into the recording); record `seconds`."""
    with Session(rig, workdir) as s:
        host = s.host(music, side="left" if host_plays else None)
        rec = TimedRecording(rig)
        started = time.monotonic()
        a = host.proc if host_plays else s.guest(host, "left", *a_args)
        if b_at > 0:
            wait_playing([a])
            time.sleep(max(0.0, started + b_at - time.monotonic()))
        b = s.guest(host, "right", *b_args)
        wait_playing([b])
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        rec.settle()
        samples = rec.stop()
    return Pair(samples, rec, a, b, host, started)


def pair_result(
    name: str, pair: Pair, after_s: float, labels: tuple[str, str] = ("A", "B")
) -> dict[str, Any]:
    offs = offsets_chunked(pair.samples)
    late = [o for o in offs if o.time_s >= after_s]
    stats = summary(late)
    good = sum(1 for o in late if o.quality > MIN_QUALITY)
    audible = [not silent(pair.samples[:, c]) for c in (0, 1)]
    return {
        "scenario": name,
        "recorded_s": round(len(pair.samples) / RATE, 2),
        "after_s": after_s,
        "audible": {"A": audible[0], "B": audible[1]},
        "summary_after": stats,
        "windows_after": len(late),
        "windows_quality_over_0_9": good,
        "skipped": offs.skipped,
        "underruns": {labels[0]: _underruns(pair.a), labels[1]: _underruns(pair.b)},
        "self_reported_abs_error_us": {
            labels[0]: own_error(pair.a, pair.started, after_s),
            labels[1]: own_error(pair.b, pair.started, after_s),
        },
        "trajectory_us": trajectory(offs),
        "last_sync": {labels[0]: _sync_fields(pair.a), labels[1]: _sync_fields(pair.b)},
        "sync_history": {
            labels[0]: sync_history(pair.a, pair.started),
            labels[1]: sync_history(pair.b, pair.started),
        },
        "windows": _windows(offs),
    }


def pair_rows(label: str, r: dict[str, Any]) -> list[Row]:
    s = r["summary_after"]
    after = f"after {r['after_s']:g} s"
    out: list[Row] = []
    if not (r["audible"]["A"] and r["audible"]["B"]):
        quiet = [k for k, v in r["audible"].items() if not v]
        out.append(Row(f"{label}: both play", "both", f"silent: {', '.join(quiet)}", False))
    if s["count"] == 0:
        out.append(
            Row(
                f"{label}: p95 |B-A| {after}",
                f"≤ {SYNC_TARGET_US:g} µs",
                "not measured: no window matched",
                False,
            )
        )
    else:
        out.append(
            Row(
                f"{label}: p95 |B-A| {after}",
                f"≤ {SYNC_TARGET_US:g} µs",
                us(s["p95_abs_us"], "not measured"),
                within(s["p95_abs_us"], SYNC_TARGET_US),
            )
        )
        out.append(
            Row(
                f"{label}: median B-A / max |B-A|",
                "",
                f"{s['median_us']:,.0f} / {s['max_abs_us']:,.0f} µs",
                None,
            )
        )
        out.append(
            Row(
                f"{label}: windows matched (quality > {MIN_QUALITY:g})",
                "",
                f"{r['windows_quality_over_0_9']} / {r['windows_after']}",
                None,
            )
        )
    under = r["underruns"]
    shown = " / ".join("-" if v is None else str(v) for v in under.values())
    known = [v for v in under.values() if v is not None]
    out.append(
        Row(
            f"{label}: underruns {' / '.join(under)} (last sync event)",
            "0",
            shown if known else "not measured: no sync event",
            None if len(known) < len(under) else all(v == 0 for v in known),
        )
    )
    return out


def scenario_pair(name: str, plan: Plan, rig: Rig, work: Path, music: Path) -> dict[str, Any]:
    seconds = plan.settle_s + plan.measure_s
    if name == "two-guests":
        pair = run_pair(rig, work, music, seconds)
        return pair_result(name, pair, plan.settle_s)
    if name == "host-vs-guest":
        pair = run_pair(rig, work, music, seconds, host_plays=True)
        return pair_result(name, pair, plan.settle_s, ("host", "guest"))
    if name == "skew±500":
        pair = run_pair(
            rig,
            work,
            music,
            seconds,
            a_args=("--dac-skew-ppm", "500"),
            b_args=("--dac-skew-ppm", "-500"),
        )
        return pair_result(name, pair, plan.settle_s, ("A +500", "B -500"))
    if name == "skew+500":
        skew = ("--dac-skew-ppm", str(SKEW_PPM))
        pair = run_pair(rig, work, music, seconds, a_args=skew, b_args=skew)
        return pair_result(name, pair, plan.settle_s, ("A +500", "B +500"))
    pair = run_pair(
        rig,
        work,
        music,
        seconds,
        a_args=("--output-latency-ms", "8"),
        b_args=("--output-latency-ms", "120"),
    )
    return pair_result(name, pair, plan.settle_s, ("A 8 ms", "B 120 ms"))


def scenario_late_join(plan: Plan, rig: Rig, work: Path, music: Path) -> dict[str, Any]:
    pair = run_pair(rig, work, music, plan.join_at_s + plan.after_join_s, b_at=plan.join_at_s)
    join_s = pair.rec.seconds_at(pair.b.started)
    result = pair_result("late-join", pair, join_s + 10.0)
    offs = offsets_chunked(pair.samples)
    after = [o for o in offs if o.time_s >= join_s]
    # Every window around +2 s, however weak: a weak match there is a finding, not a gap.
    lo = round((join_s + 1.5) * RATE)
    around = offsets(pair.samples[lo : lo + RATE], RATE, hop_s=0.1, min_quality=0.0)
    near2 = [
        WindowOffset(o.time_s + lo / RATE, o.offset_us, o.quality)
        for o in around
        if abs(o.time_s + lo / RATE - (join_s + 2.0)) <= 0.25
    ]
    loud = transition(pair.samples[:, 1], "start", round(join_s * RATE), len(pair.samples))
    first_sound = None if loud is None else loud / RATE
    first_play = next(t for t, o in pair.b.of("playback") if o.get("state") == "playing")
    result.update(
        join_s=round(join_s, 3),
        join_method="B's process start (monotonic) placed on the recording's time axis",
        b_playing_event_after_s=round(first_play - pair.b.started, 3),
        b_first_sound_after_s=None if first_sound is None else round(first_sound - join_s, 3),
        first_match=None
        if not after
        else [round(after[0].time_s - join_s, 3), round(after[0].offset_us, 1)],
        at_2s=[
            [round(o.time_s - join_s, 3), round(o.offset_us, 1), round(o.quality, 3)] for o in near2
        ],
    )
    return result


def late_join_rows(r: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    at2 = [o for o in r["at_2s"] if o[2] >= WEAK_QUALITY]
    if at2:
        worst = max(abs(o[1]) for o in at2)
        out.append(
            Row(
                "late-join: |B-A| 2 s after B joined",
                f"≤ {LATE_JOIN_TARGET_US:g} µs",
                us(worst, "not measured"),
                within(worst, LATE_JOIN_TARGET_US),
            )
        )
    else:
        heard = r["b_first_sound_after_s"]
        best = max((o[2] for o in r["at_2s"]), default=None)
        why = (
            "B silent"
            if heard is None
            else f"B heard from +{heard:.2f} s, but at a rate off A's: best quality {best:.2f}"
            if best is not None
            else f"B first heard {heard:.2f} s after joining"
        )
        out.append(
            Row(
                "late-join: |B-A| 2 s after B joined",
                f"≤ {LATE_JOIN_TARGET_US:g} µs",
                f"not measured: no matched window ({why})",
                False,
            )
        )
    out.append(
        Row(
            "late-join: B first heard / playing event, after its start",
            "",
            f"{r['b_first_sound_after_s']} s / {r['b_playing_event_after_s']} s",
            None,
        )
    )
    s = r["summary_after"]
    if s["count"]:
        out.append(
            Row(
                "late-join: p95 |B-A| from 10 s after joining",
                f"≤ {SYNC_TARGET_US:g} µs",
                us(s["p95_abs_us"], "not measured"),
                within(s["p95_abs_us"], SYNC_TARGET_US),
            )
        )
    else:
        out.append(
            Row(
                "late-join: p95 |B-A| from 10 s after joining",
                f"≤ {SYNC_TARGET_US:g} µs",
                "not measured: no window matched",
                False,
            )
        )
    out.append(_underruns_ab("late-join", r["underruns"]))
    return out


def _underruns_ab(label: str, under: dict[str, int | None]) -> Row:
    """`LABEL: underruns A / B`: 0 each, `-` where a player never said."""
    return Row(
        f"{label}: underruns A / B",
        "0",
        " / ".join("-" if v is None else str(v) for v in under.values()),
        None if None in under.values() else not any(under.values()),
    )


# Commands --------------------------------------------------------------------------------

COMMANDS: tuple[tuple[str, Transition, str, float], ...] = (
    ("pause", "stop", "paused", 2.0),
    ("play", "start", "playing", 3.0),
    ("seek 5", "seek", "playing", 3.0),
)
"""(command, what the sound does, the epoch's state, seconds until the next command)."""


def scenario_commands(plan: Plan, rig: Rig, work: Path, music: Path) -> dict[str, Any]:
    sent: list[tuple[str, float]] = []
    with Session(rig, work) as s:
        host = s.host(music, commands=True)
        rec = TimedRecording(rig)
        started = time.monotonic()
        a, b = s.guest(host, "left"), s.guest(host, "right")
        wait_playing([a, b])
        time.sleep(max(0.0, started + plan.settle_s - time.monotonic()))
        for _ in range(plan.command_cycles):
            for command, _, _, pause_s in COMMANDS:
                sent.append((command, host.proc.send(command)))
                time.sleep(pause_s)
        rec.settle()
        samples = rec.stop()
    events = host.proc.of("playback")
    offs = offsets_chunked(samples)
    transitions: list[dict[str, Any]] = []
    for command, at in sent:
        kind, state = next((k, st) for c, k, st, _ in COMMANDS if c == command)
        start = max(0, round(rec.seconds_at(at) * RATE) - round(0.05 * RATE))
        found = [
            transition(samples[:, c], kind, start, round(COMMAND_SEARCH_S * RATE)) for c in (0, 1)
        ]
        epoch = next((o for t, o in events if t >= at and o.get("state") == state), None)
        scheduled_ms = None if epoch is None else (epoch["atUs"] - host.session_us(at)) / 1000
        heard_ms = [None if f is None else (rec.monotonic_at(f) - at) * 1000 for f in found]
        apart = None if None in found else (found[1] - found[0]) / RATE * 1e6  # type: ignore[operator]
        # B-A while both sound steadily next to it (before a pause or seek, after a play):
        # a transition as far apart as the players already were is no fault of the command.
        edge = (found[0] if found[0] is not None else start) / RATE
        lo, hi = (edge + 0.05, edge + 1.0) if kind == "start" else (edge - 1.0, edge - 0.05)
        near = [o.offset_us for o in offs if lo <= o.time_s <= hi]
        transitions.append(
            {
                "command": command,
                "kind": kind,
                "sent_s": round(at - started, 4),
                "sample": found,
                "b_minus_a_us": None if apart is None else round(apart, 1),
                "steady_b_minus_a_us": None if not near else round(float(np.median(near)), 1),
                "heard_delay_ms": [None if h is None else round(h, 2) for h in heard_ms],
                "scheduled_delay_ms": None if scheduled_ms is None else round(scheduled_ms, 2),
                "epoch": epoch,
            }
        )
    return {
        "scenario": "commands",
        "recorded_s": round(len(samples) / RATE, 2),
        "clock_map": {"slope_s_per_sample": rec.slope, "polls": len(rec.polls)},
        "delay_method": "heard: the transition's recorded sample placed on the monotonic clock "
        "(file growth: least-squares slope, lower-envelope intercept; about -20..+10 ms) minus "
        "the command's send time; scheduled: the new epoch's atUs minus the session time at send",
        "transitions": transitions,
        "underruns": {"A": _underruns(a), "B": _underruns(b)},
        "sync_history": {"A": sync_history(a, started), "B": sync_history(b, started)},
    }


def commands_rows(r: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for command, kind, _, _ in COMMANDS:
        mine = [t for t in r["transitions"] if t["command"] == command]
        apart = [t["b_minus_a_us"] for t in mine]
        heard = [h for t in mine for h in t["heard_delay_ms"]]
        scheduled = [t["scheduled_delay_ms"] for t in mine]
        label = f"commands: {command} ({kind}, {len(mine)}x)"
        if None in apart:
            missing = sum(1 for t in mine for f in t["sample"] if f is None)
            out.append(
                Row(
                    f"{label}: B-A at the transition",
                    "same sample (≤ 100 µs)",
                    f"not measured: {missing} side(s) showed no {kind}",
                    False,
                )
            )
        else:
            worst = max(abs(v) for v in apart)
            shown = ", ".join(
                f"{t['b_minus_a_us']:,.0f}"
                + (
                    ""
                    if t["steady_b_minus_a_us"] is None
                    else f" ({t['steady_b_minus_a_us']:,.0f})"
                )
                for t in mine
            )
            out.append(
                Row(
                    f"{label}: B-A at the transition (steady B-A next to it)",
                    "same sample (≤ 100 µs)",
                    f"{shown} µs",
                    worst <= SYNC_TARGET_US,
                )
            )
        known = [h for h in heard if h is not None]
        sched = [v for v in scheduled if v is not None]
        # JACK's recorder reads what players write in the cycle they write it, one output
        # buffer before it is due at the DAC: there the figure is not when it is heard.
        written = r.get("rig") == "jack"
        out.append(
            Row(
                f"{label}: delay "
                + ("written, a buffer before heard" if written else "heard (±20 ms)")
                + " / scheduled",
                f"≤ {COMMAND_DELAY_TARGET_MS:g} ms",
                ("not measured" if not known else f"{max(known):.0f}")
                + " / "
                + ("-" if not sched else f"{max(sched):.0f}")
                + " ms",
                None if not known or written else max(known) <= COMMAND_DELAY_TARGET_MS,
            )
        )
    out.append(_underruns_ab("commands", r["underruns"]))
    return out


# Soak ----------------------------------------------------------------------------------


def scenario_soak(
    plan: Plan, rig: Rig, work: Path, music: Path, console: Console
) -> dict[str, Any]:
    seconds = plan.soak_minutes * 60
    with Session(rig, work) as s:
        host = s.host(music, "--loop", "--codec", "opus")
        rec = TimedRecording(rig)
        started = time.monotonic()
        a, b = s.guest(host, "left"), s.guest(host, "right")
        wait_playing([a, b])
        time.sleep(max(0.0, started + plan.settle_s - time.monotonic()))
        procs = {"A": a, "B": b, "host": host.proc}
        cpu0 = {k: p.cpu_seconds() for k, p in procs.items()}
        under0 = {"A": _underruns(a), "B": _underruns(b)}
        t0 = time.monotonic()
        end = t0 + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 60.0))
            if end - time.monotonic() > 1:
                console.log(
                    f"soak: {(end - time.monotonic()) / 60:.1f} min left, underruns "
                    f"A {_underruns(a)}, B {_underruns(b)}"
                )
        wall = time.monotonic() - t0
        cpu1 = {k: p.cpu_seconds() for k, p in procs.items()}
        rec.settle()
        samples = rec.stop()
    cpu = {
        k: None
        if cpu0[k] is None or cpu1[k] is None
        else round((cpu1[k] - cpu0[k]) / wall * 100, 2)  # type: ignore[operator]
        for k in procs
    }
    result = pair_result("soak", Pair(samples, rec, a, b, host, started), plan.settle_s)
    result.update(
        minutes=plan.soak_minutes,
        measured_s=round(wall, 1),
        cpu_percent=cpu,
        underruns_at_start=under0,
        codec="opus",
    )
    return result


def soak_rows(r: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    under, start = r["underruns"], r["underruns_at_start"]
    during = {
        k: None if under[k] is None or start[k] is None else under[k] - start[k] for k in under
    }
    out.append(
        Row(
            f"soak {r['minutes']:g} min: underruns A / B (total; during soak)",
            "0",
            " / ".join(f"{under[k]}; {during[k]}" for k in under),
            None if None in under.values() else not any(under.values()),
        )
    )
    for k in ("A", "B"):
        v = r["cpu_percent"][k]
        out.append(
            Row(
                f"soak: guest {k} CPU (opus), % of a core",
                f"< {CPU_TARGET_PERCENT:g} %",
                "not measured" if v is None else f"{v:.1f} %",
                None if v is None else v < CPU_TARGET_PERCENT,
            )
        )
    h = r["cpu_percent"]["host"]
    out.append(
        Row(
            "soak: host CPU (opus, 2 guests), % of a core",
            "",
            "not measured" if h is None else f"{h:.1f} %",
            None,
        )
    )
    s = r["summary_after"]
    if s["count"]:
        out.append(
            Row(
                "soak: p95 |B-A| / max |B-A|",
                f"≤ {SYNC_TARGET_US:g} µs",
                f"{s['p95_abs_us']:,.0f} / {s['max_abs_us']:,.0f} µs",
                within(s["p95_abs_us"], SYNC_TARGET_US),
            )
        )
    return out


# Fan-out -------------------------------------------------------------------------------


class CountingClient(WsClient):
    """Counts the bytes that reach it on the wire (frames, headers, compression and all)."""

    wire_bytes = 0

    def data_received(self, data: bytes, arrived: float) -> None:
        self.wire_bytes += len(data)
        super().data_received(data, arrived)


class Receiver:
    """One light member: joins asking for audio, places every frame on its epoch's timeline
    and notes how far ahead of its play time it arrived."""

    def __init__(self, index: int, offset_us: int, log: FrameLog) -> None:
        self.index = index
        self.offset_us = offset_us
        self.log = log
        self.epochs: dict[int, tuple[int, int]] = {}
        self.welcomed: float | None = None
        self._welcome = asyncio.Event()
        self.client: CountingClient | None = None

    async def join(self, port: int, session_id: str, sem: asyncio.Semaphore) -> None:
        """Connect, JOIN asking for audio, wait for WELCOME (or the link's end)."""
        async with sem:
            client = await CountingClient.connect(port, self.on_message)
            assert isinstance(client, CountingClient)
            self.client = client
            client.send_text(_join_frame(f"fanout-{self.index:04d}", session_id))
            welcome: asyncio.Future[Any] = asyncio.ensure_future(self._welcome.wait())
            gone: asyncio.Future[Any] = client.closed
            await asyncio.wait([gone, welcome], timeout=10.0, return_when=asyncio.FIRST_COMPLETED)
            welcome.cancel()

    def on_message(self, _client: WsClient, data: bytes, at: float) -> None:
        if data[:2] == b"LA":
            try:
                frame = decode_frame(data)
            except AudioFrameError:
                self.log.bad += 1
                return
            placed = self.epochs.get(frame.epoch)
            if placed is None:
                self.log.unplaced += 1
                return
            at_us, sample = placed
            play_us = at_us + (frame.first_sample - sample) * 1e6 / RATE
            self.log.add(self.index, at, play_us - (at * 1e6 + self.offset_us), len(data))
            return
        with contextlib.suppress(ValueError):
            message = json.loads(data)
            kind = message.get("type")
            if kind == "WELCOME":
                self.welcomed = at
                self._welcome.set()
            elif kind in ("PLAY", "SEEK") and message.get("playing", True):
                self.epochs[int(message["epoch"])] = (int(message["atUs"]), int(message["sample"]))


@dataclass
class FrameLog:
    receiver: list[int] = field(default_factory=list)
    arrival: list[float] = field(default_factory=list)
    lead_us: list[float] = field(default_factory=list)
    size: list[int] = field(default_factory=list)
    unplaced: int = 0
    bad: int = 0

    def add(self, receiver: int, at: float, lead_us: float, size: int) -> None:
        self.receiver.append(receiver)
        self.arrival.append(at)
        self.lead_us.append(lead_us)
        self.size.append(size)


def _join_frame(device_id: str, session_id: str) -> bytes:
    return msgspec.json.encode(
        {
            "type": "JOIN",
            "timestamp": time.time_ns() // 1_000_000,
            "sessionId": session_id,
            "protocolVersion": 1,
            "device": {"id": device_id, "name": device_id, "type": "terminal"},
            "audio": True,
        }
    )


async def _worker(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    log = FrameLog()
    receivers: list[Receiver] = []
    beating: asyncio.Task[None] | None = None

    async def heartbeats() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            beat = msgspec.json.encode(
                {"type": "HEARTBEAT", "timestamp": time.time_ns() // 1_000_000}
            )
            for r in receivers:
                if r.client is not None:
                    r.client.send_text(beat)

    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        if command == "join":
            port, session_id, first, count, offset_us = args
            sem = asyncio.Semaphore(8)
            fresh = [Receiver(i, offset_us, log) for i in range(first, first + count)]
            receivers.extend(fresh)
            await asyncio.gather(*(r.join(port, session_id, sem) for r in fresh))
            beating = beating or asyncio.create_task(heartbeats())
            conn.send({r.index: r.welcomed for r in receivers})
        elif command == "stop":
            if beating is not None:
                beating.cancel()
            closed_early = sum(1 for r in receivers if r.client and r.client.closed.done())
            for r in receivers:
                if r.client is not None:
                    r.client.close()
            await asyncio.sleep(0.05)
            wire = {r.index: r.client.wire_bytes if r.client else 0 for r in receivers}
            conn.send({**asdict(log), "wire_bytes": wire, "closed_early": closed_early})
            return


def fanout_worker(conn: Connection) -> None:
    """A worker process holding some of the receivers (multiprocessing, spawn)."""
    asyncio.run(_worker(conn))


def scenario_fanout(plan: Plan, rig: Rig, work: Path, music: Path) -> dict[str, Any]:
    workers = max(2, min(4, os.cpu_count() or 2))
    context = multiprocessing.get_context("spawn")
    with Session(rig, work) as s:
        host = s.host(music, "--loop", "--max-members", str(plan.receivers + 10), tls=False)
        pipes: list[Connection] = []
        processes = []
        try:
            for _ in range(workers):
                ours, theirs = context.Pipe()
                p = context.Process(target=fanout_worker, args=(theirs,), daemon=True)
                p.start()
                pipes.append(ours)
                processes.append(p)
            began = time.monotonic()
            share = -(-plan.receivers // workers)
            for w, pipe in enumerate(pipes):
                first = w * share
                pipe.send(
                    (
                        "join",
                        host.port,
                        host.session_id,
                        first,
                        max(0, min(share, plan.receivers - first)),
                        host.offset_us,
                    )
                )
            welcomed: dict[int, float | None] = {}
            for pipe in pipes:
                welcomed.update(pipe.recv())
            joined = time.monotonic()
            time.sleep(2.0)  # the joins' catch-up bursts are over
            cpu0, t0 = cpu_seconds(host.proc.pid), time.monotonic()
            time.sleep(plan.fanout_s)
            cpu1, t1 = cpu_seconds(host.proc.pid), time.monotonic()
            logs = []
            for pipe in pipes:
                pipe.send(("stop",))
                logs.append(pipe.recv())
        finally:
            for p in processes:
                p.join(5.0)
                if p.is_alive():
                    p.kill()
    arrival = np.concatenate([np.array(x["arrival"]) for x in logs])
    lead = np.concatenate([np.array(x["lead_us"]) for x in logs]) / 1000
    size = np.concatenate([np.array(x["size"]) for x in logs])
    inside = (arrival >= t0) & (arrival < t1)
    wire = sum(sum(x["wire_bytes"].values()) for x in logs)
    span = t1 - t0
    steady = lead[inside]
    ok_welcomed = sum(1 for v in welcomed.values() if v is not None)
    return {
        "scenario": "fanout",
        "receivers": plan.receivers,
        "welcomed": ok_welcomed,
        "joining_s": round(joined - began, 2),
        "measured_s": round(span, 2),
        "frames_in_window": int(inside.sum()),
        "frames_expected": round(plan.receivers * span * RATE / 960),
        "lead_ms_window": None
        if not len(steady)
        else {
            "min": round(float(steady.min()), 2),
            "p1": round(float(np.percentile(steady, 1)), 2),
            "median": round(float(np.median(steady)), 2),
            "max": round(float(steady.max()), 2),
        },
        "lead_ms_all_min": None if not len(lead) else round(float(lead.min()), 2),
        "lead_ms_all_p1": None if not len(lead) else round(float(np.percentile(lead, 1)), 2),
        "frames_all": len(lead),
        "unplaced": sum(x["unplaced"] for x in logs),
        "bad": sum(x["bad"] for x in logs),
        "closed_early": sum(x["closed_early"] for x in logs),
        "host_cpu_percent": None
        if cpu0 is None or cpu1 is None
        else round((cpu1 - cpu0) / span * 100, 2),
        "audio_bytes_per_s": round(float(size[inside].sum()) / span),
        "wire_bytes_per_s_all_run": round(wire / max(1e-9, arrival.max() - arrival.min()))
        if len(arrival)
        else None,
        "workers": workers,
    }


def fanout_rows(r: dict[str, Any]) -> list[Row]:
    out = [
        Row(
            "fanout: receivers welcomed / frames in window (expected)",
            f"{r['receivers']}",
            f"{r['welcomed']} / {r['frames_in_window']:,} ({r['frames_expected']:,})",
            r["welcomed"] == r["receivers"] and r["closed_early"] == 0,
        )
    ]
    lead = r["lead_ms_window"]
    if lead is None:
        out.append(
            Row(
                "fanout: min / p1 lead of a chunk",
                f"≥ {LEAD_TARGET_MS:g} ms",
                "not measured: no frames",
                False,
            )
        )
    else:
        out.append(
            Row(
                f"fanout: min / p1 / median lead ({r['measured_s']:g} s steady)",
                f"≥ {LEAD_TARGET_MS:g} ms",
                f"{lead['min']:.1f} / {lead['p1']:.1f} / {lead['median']:.1f} ms",
                lead["min"] >= LEAD_TARGET_MS,
            )
        )
        out.append(
            Row(
                "fanout: min / p1 lead incl. joins' catch-up",
                "",
                f"{r['lead_ms_all_min']:.1f} / {r['lead_ms_all_p1']:.1f} ms",
                None,
            )
        )
    cpu = r["host_cpu_percent"]
    out.append(
        Row(
            f"fanout: host CPU, {r['receivers']} receivers",
            "",
            "not measured" if cpu is None else f"{cpu:.1f} %",
            None,
        )
    )
    per = r["audio_bytes_per_s"] / max(1, r["welcomed"])
    out.append(
        Row(
            "fanout: audio sent (frames) total / per receiver",
            "",
            f"{r['audio_bytes_per_s'] * 8 / 1e6:.2f} Mb/s / {per * 8 / 1000:.0f} kb/s",
            None,
        )
    )
    return out


# Running -------------------------------------------------------------------------------


def notes(results: dict[str, dict[str, Any]]) -> list[str]:
    """What the table cannot say: what the players believe, how B-A moved, how it was read."""
    out: list[str] = []
    for name, r in results.items():
        if "error" in r:
            continue
        if "trajectory_us" in r:
            own = r["self_reported_abs_error_us"]
            said = ", ".join(
                f"{k} -" if v is None else f"{k} {v['median']:g} (max {v['max']:g})"
                for k, v in own.items()
            )
            path = " ".join(f"{t:g}s:{v:,.0f}" for t, v in r["trajectory_us"][:16])
            out.append(
                f"{name}: players' own |error| after {r['after_s']:.3g} s, median µs: {said}; "
                f"B-A median per 5 s (µs): {path}"
            )
        if name == "late-join":
            out.append(
                f"late-join: B started {r['join_s']:g} s into the recording (its process start "
                "placed on the recording by the file-growth map, ±20 ms); first match "
                f"{r['first_match']}"
            )
        if name == "commands":
            out.append(f"commands: {r['delay_method']}")
        if name == "fanout":
            out.append(
                f"fanout: {r['frames_all']:,} frames in all, {r['unplaced']} without their "
                f"epoch; lead = play time (epoch atUs + (first_sample - sample) / 48 kHz) - "
                "arrival (monotonic + the host's sessionClockOffsetUs); the steady window "
                "starts 2 s after the last join; host wire bytes/s over the whole run: "
                f"{r['wire_bytes_per_s_all_run']:,}"
            )
    return out


def rows(results: dict[str, dict[str, Any]]) -> list[Row]:
    out: list[Row] = []
    for name, r in results.items():
        if "error" in r:
            out.append(Row(f"{name}", "", f"not measured: {r['error'][:80]}", False))
        elif name in ("two-guests", "host-vs-guest", "skew±500", "skew+500", "latencies"):
            out.extend(pair_rows(name, r))
        elif name == "late-join":
            out.extend(late_join_rows(r))
        elif name == "commands":
            out.extend(commands_rows(r))
        elif name == "soak":
            out.extend(soak_rows(r))
        elif name == "fanout":
            out.extend(fanout_rows(r))
    return out


def run_scenario(
    name: str, plan: Plan, work: Path, music: Path, console: Console
) -> dict[str, Any]:
    workdir = work / name.replace("±", "")
    workdir.mkdir()
    load_before = [round(x, 2) for x in os.getloadavg()]
    began = time.monotonic()
    with make_rig(plan.rig, name) as rig:
        if name == "late-join":
            result = scenario_late_join(plan, rig, workdir, music)
        elif name == "commands":
            result = scenario_commands(plan, rig, workdir, music)
        elif name == "soak":
            result = scenario_soak(plan, rig, workdir, music, console)
        elif name == "fanout":
            result = scenario_fanout(plan, rig, workdir, music)
        else:
            result = scenario_pair(name, plan, rig, workdir, music)
    result["rig"] = plan.rig
    result["took_s"] = round(time.monotonic() - began, 1)
    result["load_before"] = load_before
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return result


def table(result: dict[str, Any]) -> Table:
    m = result["machine"]
    return figures_table(
        title=f"LOUDSYNC synchronized playback ({'quick' if result['quick'] else 'full'}) on "
        f"{m['nproc']} cores, {m['cpu']}, Python {m['python']}",
        caption="B-A: right channel minus left in one recording of the "
        f"{'JACK' if result['plan']['rig'] == 'jack' else 'PulseAudio'} rig "
        "(100 ms windows every 250 ms). Load average before / after: "
        f"{m['loadavg_before']} / {m['loadavg_after']}.",
        rows=rows(result["scenarios"]),
    )


def parse(argv: list[str] | None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="~20 s a scenario, no soak")
    parser.add_argument("--only", default=None, help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="the soak's length (default 10)"
    )
    parser.add_argument("--receivers", type=int, default=100, help="fanout receivers (default 100)")
    parser.add_argument(
        "--rig",
        choices=RIGS,
        default="pulse",
        help="pulse (default): PulseAudio's null sink; jack: a JACK server on its dummy "
        "driver, whose device reports are closer to the truth (see benchmarks/jack_rig.py)",
    )
    parser.add_argument("--output", type=Path, default=None, help="where to write JSON")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = RESULTS if args.rig == "pulse" else RESULTS.with_name("sync-jack.json")
    if args.only:
        wanted = tuple(ALIASES.get(s.strip(), s.strip()) for s in args.only.split(",") if s.strip())
        unknown = set(wanted) - set(SCENARIOS)
        if unknown or not wanted:
            parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
        refused = [s for s in wanted if s in NOT_ON[args.rig]]
        if refused:
            parser.error(
                f"not on the {args.rig} rig: {', '.join(refused)} ({NOT_ON_WHY[args.rig]})"
            )
    else:
        wanted = tuple(
            s for s in SCENARIOS if not (args.quick and s == "soak") and s not in NOT_ON[args.rig]
        )
    if args.minutes <= 0 or args.receivers < 1:
        parser.error("--minutes and --receivers must be positive")
    return make_plan(args.quick, args.minutes, args.receivers, wanted, args.rig), args


def main(argv: list[str] | None = None) -> int:
    plan, args = parse(argv)
    console = Console(stderr=True)
    reason = rig_unavailable_reason(plan.rig)
    if reason is not None:
        console.print(f"cannot measure: {reason}")
        return 2
    started = time.monotonic()
    result: dict[str, Any] = {
        "command": "python -m benchmarks.sync " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": plan.quick,
        "machine": machine(),
        "plan": asdict(plan),
        "targets": {
            "sync_p95_us": SYNC_TARGET_US,
            "late_join_2s_us": LATE_JOIN_TARGET_US,
            "command_delay_ms": COMMAND_DELAY_TARGET_MS,
            "guest_cpu_percent": CPU_TARGET_PERCENT,
            "chunk_lead_ms": LEAD_TARGET_MS,
        },
        "scenarios": {},
    }
    work = Path(tempfile.mkdtemp(prefix="loudsync-sync-"))
    try:
        music = make_noise(work / "noise.wav", MUSIC_S)
        for name in plan.scenarios:
            console.log(f"{name}…")
            try:
                result["scenarios"][name] = run_scenario(name, plan, work, music, console)
            except Exception as exc:  # one broken scenario must not hide the others' figures
                console.print_exception()
                result["scenarios"][name] = {
                    "scenario": name,
                    "error": f"{type(exc).__name__}: {exc}",
                }
    except KeyboardInterrupt:
        console.print("interrupted: every process stopped, nothing written")
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["checks"] = [asdict(row) for row in rows(result["scenarios"])]
    result["notes"] = notes(result["scenarios"])
    publish(result, table(result), result["notes"], args.output, console, width=140)
    return 0


if __name__ == "__main__":
    sys.exit(main())
