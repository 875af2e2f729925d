"""The playout engine against a simulated sound card, in fake time (no device).

The source is a sawtooth of sample indices (int16, one step per sample, wrapping every
65536; the right channel half a period later), so each output value tells which
fractional source position was emitted; it is compared with where the epoch says the
member should be when that frame reaches the DAC. Per frame, the channel far from its
wrap is read: the interpolator rings around a wrap, as around any discontinuity.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray

from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.epoch import RATE, Epoch
from loudsync_tui.core.playout import (
    FADE_FRAMES,
    GLIDE_RATE,
    VOLUME_RAMP_FRAMES,
    Playout,
    _Reports,
    interpolate,
)

SECOND = 1_000_000
LOCAL0 = 5_000_000_000.0
"""The member's monotonic clock when the test starts (µs): far from zero, like a real one."""
OFFSET = -4_000_000_000
US_PER_SAMPLE = SECOND / RATE


def saw(first: int, n: int) -> NDArray[np.int16]:
    k = np.arange(first, first + n)
    return np.stack([((k + 32768) % 65536) - 32768, (k % 65536) - 32768], axis=1).astype(np.int16)


@dataclass
class Block:
    session: NDArray[np.float64]
    out: NDArray[np.float32]


class Rig:
    """A sound card running `device_ppm` fast and a clock estimate that is the truth."""

    def __init__(
        self, device_ppm: float = 0.0, clock_ppm: float = 0.0, block: int = 480, **kw: float
    ) -> None:
        self.playout = Playout(**kw)  # type: ignore[arg-type]
        self.rate = RATE * (1 + device_ppm * 1e-6)
        self.block = block
        self.clock_ppm = clock_ppm
        self.t = LOCAL0
        self.offset = OFFSET
        self.blocks = 0
        self.late_reports: Callable[[int], float] | None = None
        """µs a block's DAC-time report is late by (None: every report is exact)."""
        self.set_clock()

    def set_clock(self, shift_us: float = 0) -> None:
        """Tell the playout the session clock; `shift_us` makes its estimate wrong."""
        self.playout.set_clock(
            ClockEstimate(
                offset_us=round(self.offset + shift_us),
                skew_ppm=self.clock_ppm,
                uncertainty_us=10.0,
                rtt_us=200,
                samples=30,
                at_local_us=round(LOCAL0),
            )
        )

    def session(self, local: NDArray[np.float64] | float) -> NDArray[np.float64]:
        return np.asarray(local + self.offset + self.clock_ppm * 1e-6 * (local - LOCAL0))

    def now(self) -> float:
        return float(self.session(self.t))

    def feed(self, epoch: int, start: int, stop: int, step: int = 960) -> None:
        for a in range(start, stop, step):
            self.playout.add_chunk(epoch, a, saw(a, min(step, stop - a)))

    def render(self) -> Block:
        local = self.t + np.arange(self.block) * SECOND / self.rate
        self.blocks += 1
        late = self.late_reports(self.blocks) if self.late_reports is not None else 0.0
        out = self.playout.render(self.block, self.t + late)
        self.t += self.block * SECOND / self.rate
        return Block(self.session(local), out)

    def run(self, seconds: float) -> Block:
        blocks = [self.render() for _ in range(round(seconds * self.rate / self.block))]
        return Block(
            np.concatenate([b.session for b in blocks]), np.concatenate([b.out for b in blocks])
        )


def wanted(epoch: Epoch, session: NDArray[np.float64]) -> NDArray[np.float64]:
    """Epoch.sample_at for arrays."""
    assert epoch.playing
    return np.asarray(epoch.k0 + (session - epoch.t0_us) * RATE / SECOND)


def errors_us(block: Block, epoch: Epoch, shift_us: float = 0) -> NDArray[np.float64]:
    """Wanted minus emitted position per frame (µs; > 0: late); `shift_us` is added to
    the wanted session time. Valid while the two are within 0.3 s of each other."""
    want = wanted(epoch, block.session + shift_us)
    left = np.abs(((want + 32768) % 65536) - 32768) < 16384
    v = np.where(left, block.out[:, 0], block.out[:, 1]).astype(np.float64) * 32768
    v += np.where(left, 0, 32768)
    k = v + 65536 * np.round((want - v) / 65536)
    return np.asarray((want - k) * US_PER_SAMPLE)


def started(rig: Rig, epoch: Epoch, seconds: float = 12.0) -> None:
    rig.playout.set_epoch(epoch)
    rig.feed(epoch.number, epoch.k0, epoch.k0 + round(seconds * RATE) + RATE)


def test_interpolator_matches_the_signal_between_samples() -> None:
    rng = np.random.default_rng(1)
    k = np.arange(4000)
    for hz in (100.0, 1000.0, 5000.0, 10000.0, 15000.0):
        src = np.stack([np.sin(2 * np.pi * hz * k / RATE)] * 2, axis=1).astype(np.float32)
        pos = np.sort(rng.uniform(100, 3800, 480)).astype(np.float64)
        got = interpolate(src, 0, pos)
        exact = np.sin(2 * np.pi * hz * pos / RATE)
        assert np.abs(got[:, 0] - exact).max() < 1e-4, hz  # under -80 dB


def test_a_ramp_comes_out_at_exactly_its_fractional_position() -> None:
    src = (np.stack([np.arange(1000.0)] * 2, axis=1) / 1024).astype(np.float32)
    pos = 300 + np.arange(480, dtype=np.float64) * 1.000937 + 0.123
    got = interpolate(src, 0, pos)[:, 0].astype(np.float64) * 1024
    assert np.abs(got - pos).max() < 2e-3  # 0.04 µs


@pytest.mark.parametrize(
    ("device_ppm", "clock_ppm"), [(0, 0), (500, 0), (-500, 0), (0, 150), (-300, -200)]
)
def test_steady_state_error_is_a_few_microseconds(device_ppm: float, clock_ppm: float) -> None:
    rig = Rig(device_ppm=device_ppm, clock_ppm=clock_ppm)
    epoch = Epoch(1, 7, True, round(rig.now()) + 200_000, 1000)
    started(rig, epoch)
    run = rig.run(12.0)
    err = errors_us(run, epoch)
    tail = err[run.session > epoch.t0_us + 9 * SECOND]
    assert np.max(np.abs(tail)) <= 10
    stats = rig.playout.stats()
    assert stats.playing
    assert stats.epoch == 1
    assert abs(stats.error_us) <= 10
    assert (stats.underruns, stats.resyncs) == (0, 0)
    assert stats.device_ppm == pytest.approx(device_ppm, abs=1)
    assert stats.rate_ratio == pytest.approx(
        (1 + clock_ppm * 1e-6) / (1 + device_ppm * 1e-6), abs=5e-6
    )


def test_the_timeline_ignores_reports_that_come_late() -> None:
    """PulseAudio's ALSA plugin: every other report 0.3-1.5 ms late (measured on the
    rig). The late half must not pull the timeline: a mean would be ~450 µs off."""
    rng = np.random.default_rng(3)
    rig = Rig(device_ppm=200)
    rig.late_reports = lambda n: float(rng.uniform(300, 1500)) if n % 2 else 0.0
    rig.run(5.0)
    epoch = Epoch(1, 7, True, round(rig.now()) + 100_000, 0)
    started(rig, epoch)
    run = rig.run(8.0)
    err = errors_us(run, epoch)
    tail = err[run.session > epoch.t0_us + 4 * SECOND]
    assert np.max(np.abs(tail)) <= 20
    assert rig.playout.stats().device_ppm == pytest.approx(200, abs=5)


@pytest.mark.parametrize("device_ppm", [0, 500])
def test_start_lands_on_the_wanted_sample(device_ppm: float) -> None:
    rig = Rig(device_ppm=device_ppm)
    rig.run(5.0)  # the device ran (silent) since joining: its rate is known (after 4 s)
    epoch = Epoch(1, 7, True, round(rig.now()) + 123_457, 48_000)
    started(rig, epoch, 2)
    run = rig.run(0.5)
    before = run.session < epoch.t0_us
    assert not run.out[before].any()
    err = errors_us(run, epoch)
    after = (run.session >= epoch.t0_us + FADE_FRAMES * US_PER_SAMPLE) & (
        run.session < epoch.t0_us + 20_000
    )
    assert np.max(np.abs(err[after])) < 1
    first = np.flatnonzero(run.out[:, 0])[0]
    assert epoch.t0_us <= run.session[first] < epoch.t0_us + US_PER_SAMPLE * 1.01


def test_late_start_begins_where_the_schedule_already_is() -> None:
    rig = Rig()
    epoch = Epoch(1, 7, True, round(rig.now()) - 3_700_000, 0)
    started(rig, epoch, 6)
    run = rig.run(1.0)
    err = errors_us(run, epoch)[FADE_FRAMES:]
    assert np.max(np.abs(err)) < 1
    assert rig.playout.stats().position_ms == pytest.approx(4700, abs=15)


def test_a_pause_in_the_future_stops_exactly_there() -> None:
    rig = Rig()
    play = Epoch(1, 7, True, round(rig.now()) + 100_000, 0)
    started(rig, play, 4)
    rig.run(1.0)
    pause_at = round(rig.now()) + 1_234_567
    pause = Epoch(2, 7, False, pause_at, play.k0 + round((pause_at - play.t0_us) / US_PER_SAMPLE))
    rig.playout.set_epoch(pause)
    run = rig.run(2.0)
    full = run.session < pause_at - FADE_FRAMES * US_PER_SAMPLE
    assert np.max(np.abs(errors_us(run, play)[full])) < 1
    assert not run.out[run.session >= pause_at].any()
    last = np.flatnonzero(run.out[:, 0])[-1]
    assert pause_at - 2 * US_PER_SAMPLE < run.session[last] < pause_at
    stats = rig.playout.stats()
    assert not stats.playing
    assert stats.epoch == 2
    assert stats.position_ms == pytest.approx(pause.k0 / 48)


def test_a_seek_switches_tracks_exactly_at_its_t0() -> None:
    rig = Rig(device_ppm=200)
    rig.run(5.0)
    first = Epoch(1, 7, True, round(rig.now()) + 50_000, 0)
    started(rig, first, 6)
    rig.run(4.0)
    seek = Epoch(2, 9, True, round(rig.now()) + 300_001, 1_000_000)
    started(rig, seek, 3)
    run = rig.run(1.5)
    fade = FADE_FRAMES * US_PER_SAMPLE
    old = run.session < seek.t0_us - fade
    new = run.session >= seek.t0_us + fade
    assert np.max(np.abs(errors_us(run, first)[old])) < 2
    assert np.max(np.abs(errors_us(run, seek)[new])) < 2
    assert rig.playout.stats().epoch == 2
    assert not rig.playout.add_chunk(1, 600_000, saw(600_000, 960))  # its audio is gone


def test_an_underrun_is_silence_and_keeps_the_timeline() -> None:
    rig = Rig(device_ppm=-250)
    epoch = Epoch(1, 7, True, round(rig.now()) + 50_000, 0)
    rig.playout.set_epoch(epoch)
    rig.feed(1, 0, 5 * RATE)
    rig.feed(1, round(5.3 * RATE), 12 * RATE)  # 0.3 s missing
    run = rig.run(8.0)
    k_want = wanted(epoch, run.session)
    gap = (k_want > 5 * RATE + 20) & (k_want < 5.3 * RATE - 20)
    assert not run.out[gap].any()
    after = k_want > 5.3 * RATE + 40
    assert np.max(np.abs(errors_us(run, epoch)[after])) < 10
    stats = rig.playout.stats()
    assert (stats.underruns, stats.resyncs) == (1, 0)
    assert stats.playing


def test_a_large_error_is_a_hard_resync() -> None:
    rig = Rig()
    epoch = Epoch(1, 7, True, round(rig.now()) + 50_000, 0)
    started(rig, epoch, 8)
    rig.run(2.0)
    rig.offset += 50_000  # the clock estimate stepped by 50 ms
    rig.set_clock()
    run = rig.run(1.0)
    assert rig.playout.stats().resyncs == 1
    late = run.session > run.session[0] + 100_000
    assert np.max(np.abs(errors_us(run, epoch)[late])) < 1


def test_a_small_error_is_steered_away_smoothly() -> None:
    rig = Rig()
    epoch = Epoch(1, 7, True, round(rig.now()) + 50_000, 0)
    started(rig, epoch, 12)
    rig.run(2.0)
    rig.offset += 3_000
    rig.set_clock()
    stats = []
    for _ in range(1000):
        rig.render()
        stats.append(rig.playout.stats())
    # past 2 ms of error the limit is 5 x max_correction_ppm, then max_correction_ppm
    assert max(abs(s.rate_ratio - 1) for s in stats) <= 5e-3 + 1e-9
    assert max(abs(s.rate_ratio - 1) for s in stats if abs(s.error_us) < 1_900) <= 1e-3 + 1e-9
    assert any(abs(s.rate_ratio - 1) > 1.5e-3 for s in stats)
    assert stats[0].error_us == pytest.approx(3000)
    # a PI loop overshoots a phase step by e^-2 (13.5%) at critical damping
    assert min(s.error_us for s in stats) > -0.15 * 3000
    assert stats[-1].resyncs == 0
    assert abs(stats[-1].error_us) < 5


def test_volume_ramps_without_a_jump() -> None:
    rig = Rig()
    epoch = Epoch(1, 7, True, round(rig.now()) + 10_000, 0)
    rig.playout.set_epoch(epoch)
    for a in range(0, 3 * RATE, 960):
        rig.playout.add_chunk(1, a, np.full((960, 2), 16384, dtype=np.int16))
    rig.run(0.5)
    rig.playout.set_volume(0.2)
    run = rig.run(0.2)
    left = run.out[:, 0].astype(np.float64)
    assert np.abs(np.diff(left)).max() <= 0.5 * 0.8 / VOLUME_RAMP_FRAMES * 1.01
    assert left[0] > 0.49
    assert np.allclose(left[VOLUME_RAMP_FRAMES + 480 :], 0.1, atol=1e-6)


def test_a_small_latency_offset_glides_to_its_new_target() -> None:
    rig = Rig()
    epoch = Epoch(1, 7, True, round(rig.now()) + 10_000, 0)
    started(rig, epoch, 12)
    rig.run(2.0)
    rig.playout.set_latency_offset_ms(10.0)
    run = rig.run(4.0)
    steps = np.diff(errors_us(run, epoch)) / US_PER_SAMPLE
    assert np.abs(steps).max() < GLIDE_RATE + 5e-3  # a glide (and float32 steps), no jump
    late = run.session > run.session[0] + 2.5 * SECOND
    # Positive: the device sounds later than reported, so we emit 10 ms further on.
    assert np.max(np.abs(errors_us(run, epoch, shift_us=10_000)[late])) < 5
    assert rig.playout.stats().resyncs == 0


def test_a_large_latency_offset_jumps_with_a_crossfade() -> None:
    rig = Rig()
    epoch = Epoch(1, 7, True, round(rig.now()) + 10_000, 0)
    started(rig, epoch, 12)
    rig.run(1.0)
    rig.playout.set_latency_offset_ms(-150.0)
    run = rig.run(1.0)
    late = run.session > run.session[0] + 10_000
    assert np.max(np.abs(errors_us(run, epoch, shift_us=-150_000)[late])) < 1
    assert rig.playout.stats().resyncs == 0


def test_chunks_of_unknown_or_old_epochs_are_dropped_and_counted() -> None:
    rig = Rig()
    assert not rig.playout.add_chunk(3, 0, saw(0, 960))
    epoch = Epoch(4, 7, True, round(rig.now()) + 10_000, 0)
    rig.playout.set_epoch(epoch)
    assert rig.playout.add_chunk(4, 0, saw(0, 960))
    assert not rig.playout.add_chunk(3, 0, saw(0, 960))
    assert not rig.playout.add_chunk(5, 0, saw(0, 960))
    rig.playout.set_epoch(Epoch(3, 7, True, 0, 0))  # older: ignored
    rig.run(0.1)
    assert rig.playout.stats().epoch == 4
    assert rig.playout.stats().dropped_chunks == 3


def test_out_of_order_and_duplicate_chunks_play_as_if_in_order() -> None:
    def play(order: list[int]) -> NDArray[np.float32]:
        rig = Rig()
        rig.playout.set_epoch(Epoch(1, 7, True, round(rig.now()) + 10_000, 0))
        for a in order:
            rig.playout.add_chunk(1, a, saw(a, 960))
        return rig.run(1.5).out

    chunks = list(range(0, 2 * RATE, 960))
    shuffled = chunks + chunks[::3]
    random.Random(2).shuffle(shuffled)
    assert np.array_equal(play(chunks), play(shuffled))


def test_memory_is_bounded() -> None:
    rig = Rig(capacity_s=2.0)
    epoch = Epoch(1, 7, True, round(rig.now()) + 10_000, 0)
    rig.playout.set_epoch(epoch)
    rig.feed(1, 0, 10 * RATE)
    assert rig.playout.stats().dropped_chunks > 0
    rig.run(0.5)
    stats = rig.playout.stats()
    assert 1000 < stats.buffer_ms <= 2000
    assert stats.underruns == 0
    assert not rig.playout.add_chunk(1, 5 * RATE, saw(5 * RATE, 960))  # far ahead


def test_reset_forgets_the_session() -> None:
    rig = Rig()
    epoch = Epoch(1, 7, True, round(rig.now()) + 10_000, 0)
    started(rig, epoch, 2)
    rig.run(0.5)
    rig.playout.reset()
    run = rig.run(0.2)
    assert not run.out.any()
    stats = rig.playout.stats()
    assert not stats.playing
    assert stats.epoch is None
    assert not rig.playout.add_chunk(1, RATE, saw(RATE, 960))


def test_without_a_clock_it_plays_silence() -> None:
    rig = Rig()
    rig.playout.set_clock(None)
    started(rig, Epoch(1, 7, True, round(rig.now()), 0), 1)
    assert not rig.run(0.3).out.any()
    assert not rig.playout.stats().playing


def test_chunks_arriving_on_another_thread_while_rendering() -> None:
    rig = Rig()
    epoch = Epoch(1, 7, True, round(rig.now()) + 200_000, 0)
    rig.playout.set_epoch(epoch)
    rig.feed(1, 0, RATE // 2)

    def network() -> None:
        rig.feed(1, RATE // 2, 4 * RATE, step=480)

    feeder = threading.Thread(target=network)
    feeder.start()
    blocks = []
    for _ in range(150):
        blocks.append(rig.render())
    feeder.join()
    blocks += [rig.render() for _ in range(100)]
    run = Block(
        np.concatenate([b.session for b in blocks]), np.concatenate([b.out for b in blocks])
    )
    assert rig.playout.stats().underruns == 0
    played = run.session > epoch.t0_us + 10_000
    assert np.max(np.abs(errors_us(run, epoch)[played])) < 1


def test_the_recent_reports_quantile_is_numpys_percentile() -> None:
    """The audio callback's low quantile of DAC reports, kept in arrays (a list and
    np.percentile cost 110 µs a block), gives what np.percentile gives."""
    rng = np.random.default_rng(3)
    reports = _Reports()
    frames = np.cumsum(rng.integers(400, 2000, 700))
    times = frames * 20.833 + rng.exponential(300, 700)
    for f, t in zip(frames, times, strict=True):
        reports.append(int(f), float(t))  # past 256 it grows, later it compacts
        reports.drop_before(float(t) - 4_000_000)
        kept = times[(times >= t - 4_000_000) & (times <= t)]
        assert len(reports) == len(kept)
    assert reports.last() == (float(frames[-1]), float(times[-1]))
    since = float(times[-1]) - 250_000
    recent = (times - frames * 20.8)[times >= since]
    assert reports.low_quantile(since, 20.8) == pytest.approx(np.percentile(recent, 20.0))
    reports.clear()
    assert len(reports) == 0
