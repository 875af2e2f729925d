"""The app on a terminal while music plays: bytes per second, redraws, key latency.

    python -m benchmarks.app_playing          # ~40 s: 3 s warm-up, 20 s idle, 20 key presses

The real app runs the way a user runs it, on a pseudo-terminal of 100x30:
`python -m loudsync_tui host --session-name Bench --play <wav> --loop --no-local-audio
--no-tls --no-discovery --bind 127.0.0.1 --port 0 --interface 127.0.0.1 --config-dir <tmp>`
(nothing leaves loopback: `--interface` keeps the Browse screen's mDNS browser there too),
with TERM=xterm-256color and no COLORTERM (what an SSH session usually gets). The music
is a 3-minute noise WAV made on the spot, so the progress bar moves as it does for a song.

The pty plays a terminal that supports synchronized output (as kitty, WezTerm, iTerm2,
foot, Alacritty do): Textual asks with DECRQM `ESC[?2026$p` and, answered, wraps
every frame in `ESC[?2026h` ... `ESC[?2026l`. Frames are counted by `ESC[?2026h`; unanswered,
Textual emits no marker at all (checked), so the query is answered and counted. Nothing
else is answered (Textual also asks about in-band resize, mode 2048).

1. Output: after "playing" shows and a warm-up, the bytes the app writes to the terminal
   over the idle window (no key pressed), per second; also by screen row, to show what
   is redrawn.
2. Frames per second over the same window.
3. Key latency: Space (play/pause) pressed again and again, a random 0.35-0.65 s apart;
   the time from writing the key to the pty until the output holds the Now Playing
   panel's new state word (`⏸ paused` / `▶ playing`, glyph and word), read as it arrives.
At the end the app is quit as a user would (`q`, then `y` to the host's question) and
must be gone within 15 s (else it is killed). Its terminal output and log file are
scanned for errors. Raw figures go to benchmarks/results/app_playing-<timestamp>.json
(git-ignored).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import fcntl
import itertools
import math
import os
import random
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from benchmarks.children import die_with_parent
from benchmarks.clock import cpu_seconds
from benchmarks.media import noise, write_wav
from benchmarks.report import RESULTS_DIR, Row, figures_table, publish, within
from benchmarks.run import machine

ROOT = Path(__file__).resolve().parent.parent

COLS, ROWS = 100, 30
TRACK_S = 180.0
START_TIMEOUT_S = 30.0
KEY_TIMEOUT_S = 5.0
QUIT_TIMEOUT_S = 15.0
PRESS_GAP_S = (0.35, 0.65)
BURST_GAP_S = 0.015
"""Writes closer together than this make one burst (a cross-check of the frame count)."""

BYTES_TARGET = 2000.0
"""Bytes per second to the terminal while playing, no key pressed (it runs over SSH)."""
FPS_TARGET = 4.0
"""The progress bar redraws at most 4 times a second; nothing else should move."""
LATENCY_TARGET_MS = 100.0

SYNC_QUERY = b"\x1b[?2026$p"
SYNC_REPLY = b"\x1b[?2026;2$y"
"""DECRPM: mode 2026 is known and currently reset, i.e. supported."""
SYNC_START = b"\x1b[?2026h"
SYNC_END = b"\x1b[?2026l"
ALT_SCREEN_OFF = b"\x1b[?1049l"
CUP = re.compile(rb"\x1b\[(\d+);(\d+)H")
ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=$]*[A-Za-z~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>]")
_SGR = rb"(?:\x1b\[[0-9;]*m)*"
STATE = {
    "playing": re.compile("▶ ".encode() + _SGR + b"playing"),
    "paused": re.compile("⏸ ".encode() + _SGR + b"paused"),
}
"""The Now Playing panel's state: its glyph, then (in another style) its word."""
QUIT_QUESTION = re.compile(rb"Stop the session and quit\?")
PROBLEM_WORDS = ("Traceback", "Error", "Exception", "error:", "Warning")


@dataclass(frozen=True)
class Plan:
    warmup_s: float
    duration_s: float
    presses: int
    seed: int


# The app on a pty ---------------------------------------------------------------------


def _child_setup() -> None:
    """In the child, after setsid: the pty becomes its controlling terminal (so it gets
    SIGHUP if this process vanishes), and it dies with this process anyway."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    die_with_parent()


class PtyApp:
    """One child process on a pty; every byte it writes is kept with its arrival time."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        try:
            self.proc = subprocess.Popen(
                args,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=_child_setup,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        self.data = bytearray()
        self.ends: list[int] = []
        """Offset just past each chunk read, in order."""
        self.times: list[float] = []
        """When each chunk was read (time.monotonic)."""
        self.sync_queries = 0
        self.eof = False
        self.cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        tail = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(self.master, 65536)
            except (OSError, ValueError):  # EIO: every writer of the pty is gone
                chunk = b""
            now = time.monotonic()
            if not chunk:
                break
            seen = tail + chunk
            for _ in range(seen.count(SYNC_QUERY)):
                self.sync_queries += 1
                self.write(SYNC_REPLY)
            tail = seen[-(len(SYNC_QUERY) - 1) :]
            with self.cond:
                self.data += chunk
                self.ends.append(len(self.data))
                self.times.append(now)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def write(self, data: bytes) -> float:
        """Writes `data` as typed; returns the time just before it was written."""
        with self._write_lock:
            at = time.monotonic()
            os.write(self.master, data)
        return at

    def offset(self) -> int:
        with self.cond:
            return len(self.data)

    def arrival(self, end: int) -> float:
        """When the byte just before offset `end` was read."""
        with self.cond:
            return self.times[bisect.bisect_left(self.ends, end)]

    def wait_for(self, pattern: re.Pattern[bytes], start: int, timeout: float) -> float | None:
        """Waits until the output from offset `start` holds `pattern`; returns when the
        chunk completing it was read, None on timeout or once the app is gone."""
        deadline = time.monotonic() + timeout
        pos = start
        with self.cond:
            while True:
                m = pattern.search(self.data, pos)
                if m is not None:
                    return self.times[bisect.bisect_left(self.ends, m.end())]
                if self.eof:
                    return None
                pos = max(start, len(self.data) - 512)  # a match may straddle chunks
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def window(self, t0: float, t1: float) -> tuple[int, int]:
        """Offsets of the bytes read from t0 (included) to t1 (excluded)."""
        with self.cond:
            first = bisect.bisect_left(self.times, t0)
            last = bisect.bisect_left(self.times, t1)
            start = self.ends[first - 1] if first > 0 else 0
            end = self.ends[last - 1] if last > 0 else 0
            return start, end

    def stop(self, grace_s: float) -> tuple[int | None, bool]:
        """Waits up to `grace_s` for the app to end by itself, then SIGTERM, then SIGKILL
        (its process group: the session it leads). Returns its exit code and whether it
        had to be killed."""
        forced = False
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            forced = True
            for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, sig)
                try:
                    self.proc.wait(wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        return self.proc.poll(), forced

    def close(self) -> None:
        if self.proc.poll() is None:
            self.stop(0.0)
        self._reader.join(2.0)  # EIO ends it once the app is gone
        self._stop.set()
        self._reader.join(2.0)
        with contextlib.suppress(OSError):
            os.close(self.master)


# Figures --------------------------------------------------------------------------------


def _text(raw: bytes) -> str:
    return ESCAPES.sub(b"", raw).decode("utf-8", "replace")


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (of 20 samples, p95 is the 19th)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def idle_figures(app: PtyApp, t0: float, t1: float) -> dict[str, Any]:
    start, end = app.window(t0, t1)
    with app.cond:
        seg = bytes(app.data[start:end])
        times = list(app.times)
        ends = list(app.ends)
    elapsed = t1 - t0
    frame_at: list[float] = []
    framed = 0
    rows: dict[int, dict[str, Any]] = {}
    pos = seg.find(SYNC_START)
    while pos >= 0:
        stop = seg.find(SYNC_END, pos)
        stop = len(seg) if stop < 0 else stop + len(SYNC_END)
        frame = seg[pos:stop]
        framed += len(frame)
        frame_at.append(times[bisect.bisect_left(ends, start + pos + len(SYNC_START))])
        cups = list(CUP.finditer(frame))
        touched: set[int] = set()
        for n, cup in enumerate(cups):
            row = int(cup.group(1))
            upto = cups[n + 1].start() if n + 1 < len(cups) else len(frame)
            body = frame[cup.start() : upto]
            r = rows.setdefault(row, {"bytes": 0, "frames": 0, "text": ""})
            r["bytes"] += len(body)
            shown = " ".join(_text(body).split())
            if shown:
                r["text"] = shown
            touched.add(row)
        for row in touched:
            rows[row]["frames"] += 1
        pos = seg.find(SYNC_START, stop)
    gaps = [b - a for a, b in itertools.pairwise(frame_at)]
    peak = max(
        (bisect.bisect_left(frame_at, t + 1.0) - i for i, t in enumerate(frame_at)), default=0
    )
    first = bisect.bisect_left(times, t0)
    last = bisect.bisect_left(times, t1)
    bursts = 0
    previous: float | None = None
    for t in times[first:last]:
        if previous is None or t - previous >= BURST_GAP_S:
            bursts += 1
        previous = t
    by_row = {
        row: {
            "bytes_per_s": round(r["bytes"] / elapsed, 1),
            "redraws_per_s": round(r["frames"] / elapsed, 2),
            "text": r["text"][:60],
        }
        for row, r in sorted(rows.items(), key=lambda kv: -kv[1]["bytes"])
    }
    return {
        "window_s": round(elapsed, 3),
        "bytes": len(seg),
        "bytes_per_s": round(len(seg) / elapsed, 1),
        "frames": len(frame_at),
        "frames_per_s": round(len(frame_at) / elapsed, 2),
        "peak_frames_in_1s": peak,
        "frame_gap_ms": None
        if not gaps
        else {
            "min": round(min(gaps) * 1000, 1),
            "median": round(statistics.median(gaps) * 1000, 1),
            "max": round(max(gaps) * 1000, 1),
        },
        "bytes_per_frame_median": None
        if not frame_at
        else round(statistics.median(_frame_sizes(seg)), 1),
        "bytes_outside_frames": len(seg) - framed,
        "write_bursts": bursts,
        "by_row": by_row,
    }


def _frame_sizes(seg: bytes) -> list[int]:
    sizes: list[int] = []
    pos = seg.find(SYNC_START)
    while pos >= 0:
        stop = seg.find(SYNC_END, pos)
        stop = len(seg) if stop < 0 else stop + len(SYNC_END)
        sizes.append(stop - pos)
        pos = seg.find(SYNC_START, stop)
    return sizes


def press_space(app: PtyApp, plan: Plan) -> dict[str, Any]:
    rng = random.Random(plan.seed)
    state = "playing"
    samples: list[dict[str, Any]] = []
    for _ in range(plan.presses):
        time.sleep(rng.uniform(*PRESS_GAP_S))  # pacing only: each press is waited for
        want = "paused" if state == "playing" else "playing"
        start = app.offset()
        pressed = app.write(b" ")
        seen = app.wait_for(STATE[want], start, KEY_TIMEOUT_S)
        if seen is None:
            samples.append({"to": want, "ms": None})
            with app.cond:  # the state the screen shows now, whatever happened
                text = bytes(app.data[-20000:])
            last = {
                w: max((m.end() for m in p.finditer(text)), default=-1) for w, p in STATE.items()
            }
            state = max(last, key=lambda w: last[w])
            continue
        samples.append({"to": want, "ms": round((seen - pressed) * 1000, 2)})
        state = want
    values = [s["ms"] for s in samples if s["ms"] is not None]
    return {
        "presses": plan.presses,
        "answered": len(values),
        "p50_ms": None if not values else round(_percentile(values, 50), 1),
        "p95_ms": None if not values else round(_percentile(values, 95), 1),
        "max_ms": None if not values else round(max(values), 1),
        "final_state": state,
        "by_direction_ms": {
            word: _spread([s["ms"] for s in samples if s["to"] == word and s["ms"] is not None])
            for word in ("paused", "playing")
        },
        "samples": samples,
    }


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "n": len(values),
        "median": round(statistics.median(values), 1),
        "max": round(max(values), 1),
    }


def quit_app(app: PtyApp) -> dict[str, Any]:
    """q, then y once the host's question shows; the app must end by itself."""
    start = app.offset()
    pressed = app.write(b"q")
    asked = app.wait_for(QUIT_QUESTION, start, KEY_TIMEOUT_S)
    answered = app.write(b"y")
    code, forced = app.stop(QUIT_TIMEOUT_S)
    return {
        "question_ms": None if asked is None else round((asked - pressed) * 1000, 1),
        "exit_s": round(time.monotonic() - answered, 2),
        "exit_code": code,
        "killed": forced,
    }


def problems(app: PtyApp, log_file: Path) -> dict[str, Any]:
    """Anything odd: error words on screen, text left on the normal screen after exit,
    undecodable bytes, and the log file's warnings and errors."""
    with app.cond:
        raw = bytes(app.data)
    text = _text(raw)
    screen_words = sorted({w for w in PROBLEM_WORDS if w in text})
    lines = [" ".join(line.split()) for line in re.split(r"[\r\n]", text)]
    screen_lines = [line for line in lines if any(w in line for w in screen_words)]
    after = raw.rsplit(ALT_SCREEN_OFF, 1)[1] if ALT_SCREEN_OFF in raw else b""
    left = " ".join(_text(after).split())
    try:
        log = log_file.read_text(errors="replace").splitlines()
    except OSError:
        log = []
    bad = [
        line
        for line in log
        if any(f" {level} " in line for level in ("WARNING", "ERROR", "CRITICAL"))
        or line.startswith(("Traceback", "  File", "    "))
    ]
    return {
        "output_bytes": len(raw),
        "invalid_utf8": raw.decode("utf-8", "replace").count("\ufffd"),
        "restored_screen": ALT_SCREEN_OFF in raw,
        "error_words_on_screen": screen_words,
        "error_lines_on_screen": sorted(set(screen_lines))[:10],
        "text_after_exit": left[:500],
        "log_lines": len(log),
        "log_problems": bad[:40],
        "log_tail": log[-15:],
    }


# Run ------------------------------------------------------------------------------------


def app_command(wav: Path, config_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "loudsync_tui",
        "host",
        "--config-dir",
        str(config_dir),
        "--session-name",
        "Bench",
        "--play",
        str(wav),
        "--loop",
        "--no-local-audio",
        "--no-tls",
        "--no-discovery",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--interface",
        "127.0.0.1",
    ]


def app_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TEXTUAL") and k not in ("COLORTERM", "NO_COLOR", "TERM_PROGRAM")
    }
    env.update(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
    return env


def measure(plan: Plan, console: Console) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="loudsync-app-playing-") as tmp:
        work = Path(tmp)
        wav = write_wav(work / "bench-noise.wav", noise(TRACK_S))
        config_dir = work / "config"
        command = app_command(wav, config_dir)
        out["app_command"] = " ".join(command[1:])
        console.log("starting the app on a pty…")
        launched = time.monotonic()
        app = PtyApp(command, app_env())
        try:
            shown = app.wait_for(STATE["playing"], 0, START_TIMEOUT_S)
            if shown is None:
                tail = _text(bytes(app.data[-4000:]))
                raise RuntimeError(f"the app did not show 'playing' in time:\n{tail}")
            out["start_to_playing_s"] = round(shown - launched, 2)
            out["sync_queries_answered"] = app.sync_queries
            time.sleep(plan.warmup_s)  # warm-up: a duration, not a synchronisation
            console.log(f"idle for {plan.duration_s:g} s…")
            cpu0, t0 = cpu_seconds(app.proc.pid), time.monotonic()
            time.sleep(plan.duration_s)
            cpu1, t1 = cpu_seconds(app.proc.pid), time.monotonic()
            out["idle"] = idle_figures(app, t0, t1)
            out["idle"]["cpu_percent"] = (
                None if cpu0 is None or cpu1 is None else round((cpu1 - cpu0) / (t1 - t0) * 100, 1)
            )
            console.log(f"{plan.presses} presses of Space…")
            out["keys"] = press_space(app, plan)
            console.log("quitting (q, y)…")
            out["quit"] = quit_app(app)
        finally:
            app.close()
        out["problems"] = problems(app, config_dir / "loudsync-tui.log")
    return out


def rows(result: dict[str, Any]) -> list[Row]:
    idle, keys = result["idle"], result["keys"]
    out = [
        Row(
            f"Output to the terminal while playing, no key ({idle['window_s']:.0f} s)",
            f"< {BYTES_TARGET:,.0f} B/s",
            f"{idle['bytes_per_s']:,.0f} B/s",
            idle["bytes_per_s"] < BYTES_TARGET,
        ),
        Row(
            "Frames (redraws) while playing, no key",
            f"≤ {FPS_TARGET:g} /s",
            f"{idle['frames_per_s']:.2f} /s",
            within(idle["frames_per_s"], FPS_TARGET),
        ),
        Row(
            "Frames in the busiest second",
            "",
            f"{idle['peak_frames_in_1s']}",
            None,
        ),
        Row("App CPU while playing, no key", "", _pct(idle["cpu_percent"]), None),
    ]
    for stat in ("p50", "p95", "max"):
        value = keys[f"{stat}_ms"]
        out.append(
            Row(
                f"Space → state word shown: {stat}",
                f"≤ {LATENCY_TARGET_MS:g} ms",
                "-" if value is None else f"{value:.1f} ms",
                within(value, LATENCY_TARGET_MS),
            )
        )
    out.append(
        Row(
            "Space presses answered",
            f"{keys['presses']}",
            f"{keys['answered']}",
            keys["answered"] == keys["presses"],
        )
    )
    q = result["quit"]
    out.append(
        Row(
            "Quit with q, y: the app ends by itself",
            f"≤ {QUIT_TIMEOUT_S:g} s",
            "killed" if q["killed"] else f"{q['exit_s']:.2f} s, exit {q['exit_code']}",
            not q["killed"] and q["exit_code"] == 0,
        )
    )
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def notes(result: dict[str, Any]) -> list[str]:
    idle, p, q = result["idle"], result["problems"], result["quit"]
    gaps = idle["frame_gap_ms"]
    out = [
        f"Frames counted by ESC[?2026h (synchronized output; {result['sync_queries_answered']} "
        f"DECRQM ?2026 query answered 'supported'); {idle['frames']} frames, "
        f"{idle['write_bursts']} write bursts (writes < {BURST_GAP_S * 1000:g} ms apart) "
        f"as a cross-check; median frame {idle['bytes_per_frame_median']} B; "
        f"{idle['bytes_outside_frames']} B outside frames"
        + (
            ""
            if gaps is None
            else f"; gap between frames min / median / max {gaps['min']} / {gaps['median']} / "
            f"{gaps['max']} ms"
        ),
        f"Started: 'playing' shown {result['start_to_playing_s']} s after launch; quit question "
        f"{q['question_ms']} ms after q; exit {q['exit_s']} s after y, code {q['exit_code']}",
    ]
    split = [
        f"to {word}: median {d['median']} ms, max {d['max']} ms (n={d['n']})"
        for word, d in result["keys"]["by_direction_ms"].items()
        if d is not None
    ]
    if split:
        out.append("Key latency by direction: " + "; ".join(split))
    top = list(idle["by_row"].items())[:6]
    if top:
        out.append(
            "Bytes by screen row, most first: "
            + "; ".join(
                f"row {row}: {r['bytes_per_s']:,.0f} B/s in {r['redraws_per_s']:g} redraws/s "
                f"({r['text'][:40]!r})"
                for row, r in top
            )
        )
    odd = []
    if p["error_lines_on_screen"]:
        odd.append(f"error words on screen: {p['error_lines_on_screen']}")
    if p["invalid_utf8"]:
        odd.append(f"{p['invalid_utf8']} undecodable byte(s) in the output")
    if p["text_after_exit"]:
        odd.append(f"left on the terminal after exit: {p['text_after_exit'][:200]!r}")
    if not p["restored_screen"]:
        odd.append("the alternate screen was never left")
    if p["log_problems"]:
        odd.append(f"log warnings/errors: {p['log_problems'][:5]}")
    out.append("Odd output: " + ("; ".join(odd) if odd else "none (screen, exit, log file)"))
    return out


def table(result: dict[str, Any]) -> Table:
    m, plan = result["machine"], result["plan"]
    return figures_table(
        title=(
            f"LOUDSYNC app on a {COLS}x{ROWS} pty while playing ({plan['duration_s']:g} s idle "
            f"after a {plan['warmup_s']:g} s warm-up, {plan['presses']} key presses) on "
            f"{m['nproc']} cores, {m['cpu']}, Python {m['python']}"
        ),
        caption=(
            "Host with --no-local-audio, TERM=xterm-256color; frames counted by "
            "ESC[?2026h; key latency = Space written to the pty until the new state word "
            "is read back."
        ),
        rows=rows(result),
    )


def parse_plan(argv: list[str] | None) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.app_playing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds (default: 3)")
    parser.add_argument(
        "--duration", type=float, default=20.0, help="idle seconds measured (default: 20)"
    )
    parser.add_argument("--presses", type=int, default=20, help="Space presses (default: 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the gaps between presses")
    parser.add_argument("--output", type=Path, default=None, help="where to write JSON")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.presses < 1:
        parser.error("--duration and --presses must be positive, --warmup not negative")
    return Plan(args.warmup, args.duration, args.presses, args.seed), args


def _terminated(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds: the app is stopped on the way out


def main(argv: list[str] | None = None) -> int:
    plan, args = parse_plan(argv)
    signal.signal(signal.SIGTERM, _terminated)
    console = Console(stderr=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    output: Path = args.output or RESULTS_DIR / f"app_playing-{stamp}.json"
    started = time.monotonic()
    result: dict[str, Any] = {
        "command": "python -m benchmarks.app_playing "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "plan": plan.__dict__,
        "terminal": {"cols": COLS, "rows": ROWS, "TERM": "xterm-256color"},
        "targets": {
            "bytes_per_s": BYTES_TARGET,
            "frames_per_s": FPS_TARGET,
            "key_latency_ms": LATENCY_TARGET_MS,
        },
        "frame_marker": "ESC[?2026h (DECRQM ?2026 answered as supported)",
    }
    try:
        result.update(measure(plan, console))
    except KeyboardInterrupt:
        console.print("interrupted: the app was stopped, nothing written")
        return 130
    result["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["checks"] = [row.__dict__ for row in rows(result)]
    result["notes"] = notes(result)
    publish(result, table(result), result["notes"], output, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
