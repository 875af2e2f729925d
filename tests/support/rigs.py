"""What the measuring rigs' tests share: starting a rig as a fixture, and recording players
that wait for a word to start."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks.rig_processes import Recording, RigProcesses
from benchmarks.sync_analysis import as_float

PLAYER_TIMEOUT_S = 20.0
RATE = 48_000


class Recorder(Protocol):
    def record(self) -> Recording: ...


RigT = TypeVar("RigT", bound=RigProcesses)


def started_rig(name: str, reason: str | None, make: Callable[[], RigT]) -> Iterator[RigT]:
    """A started rig for a fixture; skipped where `reason` says it cannot run, but failing
    in CI (`CI` set), which must not pass by skipping."""
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the {name} rig: {reason}")
        pytest.skip(reason)
    with make() as rig:
        yield rig


def record_players(rig: Recorder, players: list[subprocess.Popen[bytes]]) -> NDArray[np.float64]:
    """Players that printed "ready" start together once the recording runs (their stdin
    closes); the recording ends once all have finished and settled. Float samples, left = A.
    Whatever is still running at the end is killed."""
    try:
        with rig.record() as recording:
            for process in players:
                assert process.stdin is not None
                process.stdin.close()  # go
            for process in players:
                assert process.wait(PLAYER_TIMEOUT_S) == 0
            recording.settle()
        return as_float(recording.stop())
    finally:
        for process in players:
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_ready(process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    return process


def assert_one_channel(samples: NDArray[np.float64], channel: int, level: float) -> None:
    """One player, 1 s of noise at `level`, recorded: all of it in `channel` and the other
    channel digital silence."""
    assert not np.any(samples[:, 1 - channel]), "the other channel must be digital silence"
    playing = samples[np.abs(samples[:, channel]) > 0, channel]
    assert len(playing) > 0.9 * RATE
    assert np.sqrt(np.mean(playing**2)) == pytest.approx(level, rel=0.1)


def assert_whole_samples_apart(stats: dict[str, float]) -> None:
    """Two players of one noise on one clock, never resampled: whatever their start-up gap,
    B stays a whole number of samples from A in every window. A slip of one sample (20.8
    µs) anywhere, or analysis worse than ~1 µs, fails here."""
    assert stats["min_quality"] > 0.99
    assert stats["spread_max_us"] < 10.0
    lag = stats["median_us"] * RATE / 1e6
    assert abs(lag - round(lag)) < 0.05
