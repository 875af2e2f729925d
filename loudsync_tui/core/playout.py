"""A member's playout engine: which source sample goes into each output frame, and when.

Chunks, clock estimates and epochs arrive on the asyncio thread; `render` runs on the
audio thread. One lock guards what both touch, held only to swap references and copy a
few hundred samples; everything `render` alone touches lives in `_Motion`.

Steering: every block maps its first frame's DAC time to session time, asks the epoch
which (fractional) sample should sound then and compares it with the exact source
position our interpolator will emit. The source rate per output frame is a feed-forward
(track rate x session seconds per local second / measured device rate) times a small PI
correction that removes the phase error within a few seconds, capped at
`max_correction_ppm`. The interpolator is our own windowed sinc, so the emitted position
is known exactly: soxr's variable-rate mode (1.1) was measured to emit the wrong rate for
io ratios below 1 (0.9999 came out as 1.00011) and to wobble ±0.4 samples at ratios off 1.

Sign conventions: `SyncStats.error_us` > 0 means this member sounds late (behind the
schedule). A latency offset > 0 ms says the device's sound really comes out that much
later than PortAudio reports (Bluetooth), so we emit every sample that much earlier.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from loudsync_tui.core.clock_sync import ClockEstimate
from loudsync_tui.core.epoch import CHANNELS, RATE, Epoch

TAPS = 32
"""Interpolator length: measured error under -95 dB to 15 kHz and -78 dB at 18 kHz for any
fractional position; about 70 µs of numpy per 10 ms block (render in all: ~135 µs)."""
_HALF = TAPS // 2
PHASES = 256
"""Kernel rows per sample; linear interpolation between rows keeps the position exact."""
CUTOFF = 0.47
BETA = 10.0
"""Windowed-sinc cutoff (fraction of the rate) and Kaiser shape of the kernel."""

KP = 2.0
KI = 1.0
"""PI gains (per s, per s²) on the phase error in seconds: critically damped at 1 rad/s,
which averages PulseAudio's 30-150 µs of DAC-time jitter and follows its slow wander."""
HARD_RUN = 3
"""Blocks in a row beyond the hard-resync bound before jumping: one glitched DAC time
(a late callback) must not cost a jump."""
FAST_ERROR_US = 2_000
FAST_FACTOR = 5.0
"""Past 2 ms of error the correction limit is five times higher (0.5%, under 9 cents at
the default): a new stream's DAC reports can be several ms off while PulseAudio settles,
and at 0.1% that would take seconds to steer away; a jump is kept for past 20 ms."""
FADE_FRAMES = 240
"""5 ms fades where the audio is cut anyway (start, pause, seek, jump): no clicks."""
FADE_US = FADE_FRAMES * 1_000_000 / RATE
VOLUME_RAMP_FRAMES = 2_400
"""A volume change glides linearly over 50 ms."""
GLIDE_MAX_US = 20_000
GLIDE_RATE = 0.01
"""Latency-offset changes up to 20 ms glide at 1% speed (17 cents, 2 s for 20 ms); larger
ones jump with a crossfade, because a long glide is a long detune."""
MAX_PENDING = 8
PRUNE_MARGIN = RATE // 2
"""Played audio is kept half a second, so a backwards resync still finds it."""

FIT_WINDOW_US = 20_000_000
FIT_WARMUP_US = 3_000_000
FIT_MIN_SPAN_US = 1_000_000
FIT_BREAK_US = 5_000
BUCKET_US = 250_000
MAX_DEVICE_PPM = 3_000
MAX_SLOPE_SE_PPM = 100.0
PHASE_WINDOW_US = 2_000_000
DAC_QUANTILE = 20.0
"""The device timeline (see _RateFit): the rate is a line over 20 s of one point per
250 ms, left out for the first 3 s of a stream (a new PulseAudio stream's reports drift
by ms while it settles: a rate from them was 1600 ppm off), trusted from 1 s of span if
its standard error is under 100 ppm and it is within 3000 ppm of nominal (else nominal,
and the PI loop's integral carries the drift). The phase is the 20th percentile of the
last 2 s of reports (of the last 250 ms while the rate is still nominal). Three reports
in a row 5 ms off the timeline mean it broke (a stall, an underflow): start over."""


def _kernel() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Rows of the windowed sinc for fractions 0..1, each summing to 1, and their steps."""
    offsets = np.arange(-_HALF + 1, _HALF + 1, dtype=np.float64)
    frac = np.arange(PHASES + 1, dtype=np.float64) / PHASES
    d = offsets[None, :] - frac[:, None]
    window = np.i0(BETA * np.sqrt(np.clip(1 - (d / _HALF) ** 2, 0, None))) / np.i0(BETA)
    rows = 2 * CUTOFF * np.sinc(2 * CUTOFF * d) * window
    rows /= rows.sum(axis=1, keepdims=True)
    table = rows.astype(np.float32)
    return table[:-1].copy(), (table[1:] - table[:-1]).astype(np.float32)


_ROWS, _STEPS = _kernel()


def source_span(pos0: float, step: float, n: int) -> tuple[int, int]:
    """The source samples [a, b) that frames at pos0 + i * step (i < n) read (and one
    more, lest numpy round the last position up where Python did not)."""
    return math.floor(pos0) - _HALF + 1, math.floor(pos0 + (n - 1) * step) + _HALF + 2


def interpolate(
    src: NDArray[np.float32], base: int, pos: NDArray[np.float64]
) -> NDArray[np.float32]:
    """The signal at fractional source positions `pos`; `src[0]` is source sample `base`."""
    whole = np.floor(pos)
    phase = (pos - whole) * PHASES
    row = phase.astype(np.intp)
    np.minimum(row, PHASES - 1, out=row)
    mix = (phase - row).astype(np.float32)[:, None]
    coef = _ROWS[row] + mix * _STEPS[row]
    windows = sliding_window_view(np.ascontiguousarray(src.T), TAPS, axis=1)
    starts = whole.astype(np.intp) - (base + _HALF - 1)
    out: NDArray[np.float32] = np.einsum("nk,cnk->nc", coef, windows[:, starts])
    return out


@dataclass(frozen=True)
class SyncStats:
    error_us: float = 0.0
    """Latest phase error, > 0 when our sound is late (behind the schedule)."""
    underruns: int = 0
    """Gaps in the source while playing (events, not samples)."""
    resyncs: int = 0
    """Jumps because the error exceeded the hard-resync bound."""
    buffer_ms: float = 0.0
    """Audio buffered without a gap ahead of the play position."""
    rate_ratio: float = 1.0
    """Source samples per output frame in the latest block."""
    device_ppm: float = 0.0
    """The device's measured rate against its nominal one (0 until measured)."""
    playing: bool = False
    epoch: int | None = None
    position_ms: float = 0.0
    """Position in the track of the latest block's first frame."""
    dropped_chunks: int = 0
    """Chunks refused: unknown or old epoch, too far ahead, already played, over capacity."""


class _Track:
    """One epoch's chunks, sorted by first sample (float32, already scaled to ±1)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.data: dict[int, NDArray[np.float32]] = {}
        self.longest = 0
        self.total = 0

    def add(self, first: int, pcm: NDArray[np.float32]) -> bool:
        if first in self.data:
            return False
        bisect.insort(self.starts, first)
        self.data[first] = pcm
        self.longest = max(self.longest, len(pcm))
        self.total += len(pcm)
        return True

    def remove(self, first: int) -> None:
        self.starts.remove(first)
        self.total -= len(self.data.pop(first))

    def fetch(self, a: int, b: int) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Samples [a, b), zeros where absent, and which of them are absent (those before
        the track's start are silence, not absent)."""
        out = np.zeros((b - a, CHANNELS), dtype=np.float32)
        missing = np.ones(b - a, dtype=np.bool_)
        if a < 0:
            missing[: min(-a, b - a)] = False
        i = bisect.bisect_left(self.starts, a - self.longest)
        while i < len(self.starts) and self.starts[i] < b:
            first = self.starts[i]
            pcm = self.data[first]
            lo, hi = max(a, first), min(b, first + len(pcm))
            if lo < hi:
                out[lo - a : hi - a] = pcm[lo - first : hi - first]
                missing[lo - a : hi - a] = False
            i += 1
        return out, missing

    def prune(self, before: int) -> None:
        """Drop chunks that end before `before`."""
        while self.starts and self.starts[0] + len(self.data[self.starts[0]]) <= before:
            self.remove(self.starts[0])

    def contiguous(self, k: int) -> int:
        """How many samples from `k` on are buffered without a gap."""
        end = k
        i = bisect.bisect_left(self.starts, k - self.longest)
        for first in self.starts[i:]:
            if first > end:
                break
            end = max(end, first + len(self.data[first]))
        return end - k

    def drop_last(self) -> int:
        """Drop the chunk furthest ahead; its first sample."""
        first = self.starts[-1]
        self.remove(first)
        return first


class _RateFit:
    """The device timeline from its DAC-time reports: its true rate (a least-squares line
    over 20 s) and where it is now.

    Reports are not evenly noisy: through PulseAudio's ALSA plugin callbacks come in
    pairs, one report of each pair within ~30 µs of a steady line and the other 0.3 to
    1.5 ms late (measured on the null-sink rig). So every estimate here takes a low
    quantile of the reports, never their mean: each 250 ms bucket gives the line one
    point, and the phase is the same quantile of the last 2 s carried forward.
    """

    def __init__(self, nominal_rate: float) -> None:
        self._nominal = 1e6 / nominal_rate
        self._points: deque[tuple[float, float]] = deque()
        self._bucket: list[tuple[int, float]] = []
        self._recent = _Reports()
        self._since: float | None = None
        self._line: tuple[float, float, float] | None = None  # centroid f, t; µs/frame
        self._misses = 0

    def add(self, frames: int, t_us: float) -> None:
        if self._since is None:
            self._since = t_us
        slope = self.slope
        if self._recent:
            f0, t0 = self._recent.last()
            if abs(t_us - t0 - (frames - f0) * slope) > FIT_BREAK_US:
                self._misses += 1
                if self._misses >= 3:
                    self._restart(t_us)
                return
        self._misses = 0
        self._recent.append(frames, t_us)
        self._recent.drop_before(t_us - PHASE_WINDOW_US)
        if t_us < self._since + FIT_WARMUP_US:
            return  # a new stream's reports drift for seconds: no rate from them
        self._bucket.append((frames, t_us))
        if t_us - self._bucket[0][1] >= BUCKET_US:
            f = np.array([p[0] for p in self._bucket], dtype=np.float64)
            t = np.array([p[1] for p in self._bucket], dtype=np.float64)
            f_mid = float(f.mean())
            low = float(np.percentile(t - (f - f_mid) * self._nominal, DAC_QUANTILE))
            self._bucket.clear()
            self._points.append((f_mid, low))
            while self._points[0][1] < t_us - FIT_WINDOW_US:
                self._points.popleft()
            self._refit()

    def _restart(self, t_us: float) -> None:
        self._points.clear()
        self._bucket.clear()
        self._recent.clear()
        self._line = None
        self._misses = 0
        self._since = t_us

    def _refit(self) -> None:
        if self._points[-1][1] - self._points[0][1] < FIT_MIN_SPAN_US:
            return
        pts = np.array(self._points, dtype=np.float64)
        x = pts[:, 0] - pts[-1, 0]
        y = pts[:, 1] - pts[-1, 1]
        mx, my = x.mean(), y.mean()
        sxx = float(((x - mx) ** 2).sum())
        slope = float(((x - mx) * (y - my)).sum() / sxx)
        residual = y - my - slope * (x - mx)
        se = math.sqrt(float((residual**2).sum()) / max(1, len(x) - 2) / sxx)
        ppm = (self._nominal / slope - 1) * 1e6
        if abs(ppm) > MAX_DEVICE_PPM or se / slope * 1e6 > MAX_SLOPE_SE_PPM:
            self._line = None  # too noisy, or no real device is that far off: nominal
            return
        self._line = (pts[-1, 0] + mx, pts[-1, 1] + my, slope)

    @property
    def slope(self) -> float:
        """µs per frame: measured once the line spans FIT_MIN_SPAN_US, else nominal."""
        return self._nominal if self._line is None else self._line[2]

    def rate(self) -> float | None:
        """Frames per local second, None until measured."""
        return None if self._line is None else 1e6 / self._line[2]

    def dac_time(self, frames: int, reported: float) -> float:
        """When frame `frames` reaches the DAC: the low quantile of the recent reports,
        carried forward at the measured rate (`reported` alone until there are any)."""
        if not self._recent:
            return reported
        slope = self.slope
        # At the nominal rate a long window would tilt: a device 500 ppm off drifts 1 ms
        # in 2 s. Until the rate is measured, only the last quarter second counts.
        since = self._recent.last()[1] - (PHASE_WINDOW_US if self._line else BUCKET_US)
        return self._recent.low_quantile(since, slope) + frames * slope


class _Reports:
    """The recent (frames, DAC time) reports in two numpy arrays, oldest first.

    `dac_time` runs in every audio callback: a list built from a deque and
    `np.percentile` over its 200 reports took 110 of the 310 µs a block cost."""

    def __init__(self) -> None:
        self._f = np.empty(256, dtype=np.float64)
        self._t = np.empty(256, dtype=np.float64)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def append(self, frames: int, t_us: float) -> None:
        if self._end == len(self._f):
            n = len(self)
            size = len(self._f) * (2 if n > len(self._f) // 2 else 1)
            f, t = np.empty(size), np.empty(size)
            f[:n], t[:n] = self._f[self._start : self._end], self._t[self._start : self._end]
            self._f, self._t, self._start, self._end = f, t, 0, n
        self._f[self._end] = frames
        self._t[self._end] = t_us
        self._end += 1

    def drop_before(self, t_us: float) -> None:
        """Drop the oldest reports while they are older than `t_us`."""
        while self._start < self._end and self._t[self._start] < t_us:
            self._start += 1

    def last(self) -> tuple[float, float]:
        return float(self._f[self._end - 1]), float(self._t[self._end - 1])

    def clear(self) -> None:
        self._start = self._end = 0

    def low_quantile(self, since: float, slope: float) -> float:
        """DAC_QUANTILE (as np.percentile, linearly interpolated) of t - f * slope over
        the reports from `since` on."""
        f, t = self._f[self._start : self._end], self._t[self._start : self._end]
        ahead = (t - f * slope)[t >= since]
        position = DAC_QUANTILE / 100 * (len(ahead) - 1)
        lo = math.floor(position)
        hi = min(lo + 1, len(ahead) - 1)
        part = np.partition(ahead, (lo, hi))
        return float(part[lo] + (part[hi] - part[lo]) * (position - lo))


@dataclass
class _Motion:
    """What only `render` touches: the device timeline, the trajectory, the loop."""

    generation: int
    fit: _RateFit
    frames_done: int = 0
    epoch: int | None = None
    """The epoch whose trajectory `pos` continues; None: the next playing block starts."""
    pos: float = 0.0
    """Source position of the next output frame."""
    integral: float = 0.0
    beyond: int = 0
    since_start: int = 0
    fade_len: int = FADE_FRAMES
    starving: bool = False
    gain: float = 1.0
    gain_target: float = 1.0
    gain_step: float = 0.0
    offset_us: float = 0.0
    device_rate: float = 0.0
    """The rate the feed-forward last used (0: none yet)."""
    error_us: float = 0.0
    ratio: float = 1.0
    underruns: int = 0
    resyncs: int = 0


@dataclass(frozen=True)
class _Segment:
    epoch: Epoch | None
    j0: int
    j1: int
    next_t0: int | None
    """When the following epoch takes over: fade out before it."""


@dataclass
class _Part:
    """Frames [j0, j0 + n) read from `epoch` at pos0 + i * step, times `gain`."""

    epoch: int
    j0: int
    n: int
    pos0: float
    step: float
    gain: NDArray[np.float32] | None
    main: bool


class Playout:
    """Turns epochs, chunks and a clock into sample-aligned output buffers."""

    def __init__(
        self,
        rate: int = RATE,
        *,
        device_rate: float = RATE,
        hard_resync_us: float = 20_000,
        max_correction_ppm: float = 1_000,
        capacity_s: float = 30.0,
    ) -> None:
        if rate != RATE:
            raise ValueError(f"the source rate is {RATE} Hz, not {rate}")
        self.device_rate = float(device_rate)
        self.hard_resync_us = hard_resync_us
        self.max_correction = max_correction_ppm * 1e-6
        self.capacity = int(capacity_s * RATE)
        self._lock = threading.Lock()
        self._clock: ClockEstimate | None = None
        self._current: Epoch | None = None
        self._pending: tuple[Epoch, ...] = ()
        self._tracks: dict[int, _Track] = {}
        self._volume = 1.0
        self._offset_us = 0.0
        self._generation = 0
        self._dropped = 0
        self._where: tuple[int, float] | None = None  # (epoch, position) of the last block
        self._published = SyncStats()
        self._motion = _Motion(generation=0, fit=_RateFit(self.device_rate))

    # -- the asyncio side ---------------------------------------------------------------

    def set_clock(self, estimate: ClockEstimate | None) -> None:
        """The latest local -> session mapping; None stops output until the next one."""
        with self._lock:
            self._clock = estimate

    def set_epoch(self, epoch: Epoch | None) -> None:
        """Schedule an epoch: it takes over at its t0_us. Older or repeated numbers are
        ignored; pending epochs it overtakes (not yet begun, t0 not before its) are
        dropped with their audio. None stops and forgets everything."""
        with self._lock:
            if epoch is None:
                self._current, self._pending = None, ()
                self._tracks.clear()
                return
            known = [e.number for e in (self._current, *self._pending) if e is not None]
            if known and epoch.number <= max(known):
                return
            kept = tuple(p for p in self._pending if p.t0_us < epoch.t0_us)
            self._pending = (*kept, epoch)[-MAX_PENDING:]
            self._keep_tracks()

    def add_chunk(self, epoch_number: int, first_sample: int, pcm: NDArray[np.generic]) -> bool:
        """Buffer decoded audio (n, 2) int16 (or float in ±1) of an epoch's track; False
        if it was dropped (unknown epoch, duplicate, played already or over capacity)."""
        if pcm.ndim != 2 or pcm.shape[1] != CHANNELS:
            raise ValueError(f"pcm must be (n, {CHANNELS}), not {pcm.shape}")
        if pcm.dtype == np.int16:
            data = pcm.astype(np.float32) * np.float32(1 / 32768)
        else:
            data = np.array(pcm, dtype=np.float32)  # a copy: the caller may reuse its own
        n = len(data)
        with self._lock:
            if not any(e is not None and e.number == epoch_number for e in self._known()):
                self._dropped += 1
                return False
            track = self._tracks.setdefault(epoch_number, _Track())
            if self._where is not None and self._where[0] == epoch_number:
                k = self._where[1]
                if first_sample + n <= k - _HALF or first_sample > k + self.capacity:
                    self._dropped += 1
                    return False
            if n == 0 or not track.add(first_sample, data):
                return False
            while self._buffered() > self.capacity:
                self._dropped += 1
                if track.drop_last() == first_sample:
                    return False
            return True

    def set_volume(self, volume: float) -> None:
        """Gain 0..1.5, reached by a 50 ms linear ramp."""
        with self._lock:
            self._volume = min(1.5, max(0.0, float(volume)))

    def set_latency_offset_ms(self, ms: float) -> None:
        """Extra output latency of the device (> 0: its sound comes out later than
        reported, so we play earlier); glides when small, crossfades when large."""
        with self._lock:
            self._offset_us = float(ms) * 1000

    def reset(self) -> None:
        """Forget the session (a reconnect); volume, offset and the device's measured
        rate stay."""
        with self._lock:
            self._clock, self._current, self._pending = None, None, ()
            self._tracks.clear()
            self._dropped = 0
            self._where = None
            self._generation += 1
            self._published = SyncStats()

    def stats(self) -> SyncStats:
        with self._lock:
            s = self._published
            buffered = 0
            if self._where is not None and self._where[0] in self._tracks:
                epoch, pos = self._where
                buffered = self._tracks[epoch].contiguous(math.floor(pos))
            return SyncStats(
                error_us=s.error_us,
                underruns=s.underruns,
                resyncs=s.resyncs,
                buffer_ms=buffered * 1000 / RATE,
                rate_ratio=s.rate_ratio,
                device_ppm=s.device_ppm,
                playing=s.playing,
                epoch=s.epoch,
                position_ms=s.position_ms,
                dropped_chunks=self._dropped,
            )

    # -- the audio side -----------------------------------------------------------------

    def render(self, frames: int, dac_local_us: float) -> NDArray[np.float32]:
        """One output buffer (frames, 2) float32 whose first frame reaches the DAC at
        local monotonic time `dac_local_us`."""
        with self._lock:
            m = self._motion
            if m.generation != self._generation:
                m = self._motion = _Motion(
                    generation=self._generation,
                    fit=m.fit,
                    frames_done=m.frames_done,
                    gain=m.gain,
                    gain_target=m.gain_target,
                    offset_us=m.offset_us,
                )
            clock, volume, offset_target = self._clock, self._volume, self._offset_us
        m.fit.add(m.frames_done, dac_local_us)
        measured = m.fit.rate()
        device_rate = measured or self.device_rate
        _hand_over(m, device_rate)
        us_per_frame = 1e6 / device_rate
        dac_us = m.fit.dac_time(m.frames_done, dac_local_us)
        m.frames_done += frames
        out = np.zeros((frames, CHANNELS), dtype=np.float32)
        parts: list[_Part] = []
        segments: list[_Segment] = []
        if clock is not None:
            o0, glide, jump = self._glide(m, offset_target, frames * us_per_frame)
            s0 = clock.session_us(dac_us) + o0
            ds = us_per_frame * (1 + clock.skew_ppm * 1e-6 + glide)
            with self._lock:
                segments = self._advance(s0, ds, frames)
            for seg in segments:
                parts += self._plan(m, seg, s0, ds, jump)
        else:
            m.epoch = None
        self._mix(m, parts, out)
        self._apply_gain(m, volume, out)
        np.clip(out, -1.0, 1.0, out=out)
        self._publish(m, segments, measured)
        return out

    # -- internals (callers hold the lock where noted) ----------------------------------

    def _known(self) -> tuple[Epoch | None, ...]:
        return (self._current, *self._pending)

    def _keep_tracks(self) -> None:
        """Lock held: drop the audio of epochs neither current nor pending."""
        keep = {e.number for e in self._known() if e is not None}
        for number in [n for n in self._tracks if n not in keep]:
            del self._tracks[number]

    def _buffered(self) -> int:
        return sum(t.total for t in self._tracks.values())

    def _advance(self, s0: float, ds: float, frames: int) -> list[_Segment]:
        """Lock held: split the block where pending epochs take over, and switch (the
        audio of the epochs left behind goes once this block has read it)."""
        segments: list[_Segment] = []
        j = 0
        while self._pending:
            nxt = self._pending[0]
            js = max(j, math.ceil((nxt.t0_us - s0) / ds))
            if js >= frames:
                break
            if js > j:
                segments.append(_Segment(self._current, j, js, nxt.t0_us))
            self._current, self._pending = nxt, self._pending[1:]
            j = js
        next_t0 = self._pending[0].t0_us if self._pending else None
        segments.append(_Segment(self._current, j, frames, next_t0))
        return segments

    def _glide(self, m: _Motion, target_us: float, block_us: float) -> tuple[float, float, bool]:
        """The offset at the block's start, its speed (session µs per local µs) and
        whether it must jump."""
        start, diff = m.offset_us, target_us - m.offset_us
        if diff == 0:
            return start, 0.0, False
        if abs(diff) > GLIDE_MAX_US or m.epoch is None:
            m.offset_us = target_us
            return target_us, 0.0, m.epoch is not None
        step = max(-GLIDE_RATE * block_us, min(GLIDE_RATE * block_us, diff))
        m.offset_us = start + step
        return start, step / block_us, False

    def _plan(self, m: _Motion, seg: _Segment, s0: float, ds: float, jump: bool) -> list[_Part]:
        epoch, n = seg.epoch, seg.j1 - seg.j0
        if epoch is None or not epoch.playing:
            m.epoch, m.starving = None, False
            return []
        step = ds * RATE / 1e6  # feed-forward: source samples per output frame
        want = epoch.sample_at(s0 + seg.j0 * ds)
        fade_out = None
        if seg.next_t0 is not None:
            times = s0 + (seg.j0 + np.arange(n)) * ds
            fade_out = np.clip((seg.next_t0 - times) / FADE_US, 0, 1).astype(np.float32)
        limit = self.max_correction
        if m.epoch != epoch.number:  # a fresh start: exactly on the wanted sample
            m.epoch, m.pos, m.beyond, m.error_us = epoch.number, want, 0, 0.0
            m.since_start, m.fade_len = 0, FADE_FRAMES
            learned = step * (1 + max(-limit, min(limit, m.integral)))
            return [self._advance_part(m, epoch.number, seg.j0, n, learned, fade_out)]
        error_s = (want - m.pos) / RATE
        m.error_us = error_s * 1e6
        m.beyond = m.beyond + 1 if abs(m.error_us) > self.hard_resync_us else 0
        if jump or m.beyond >= HARD_RUN:
            m.resyncs += 0 if jump else 1
            xf = min(FADE_FRAMES, n)
            ramp = (1 - np.arange(1, xf + 1) / xf).astype(np.float32)
            if fade_out is not None:
                ramp *= fade_out[:xf]
            old = _Part(epoch.number, seg.j0, xf, m.pos, step, ramp, main=False)
            m.pos, m.beyond, m.since_start, m.fade_len, m.error_us = want, 0, 0, xf, 0.0
            return [old, self._advance_part(m, epoch.number, seg.j0, n, step, fade_out)]
        correction = KP * error_s + m.integral
        if abs(correction) < limit:  # integrate only while not saturated (no windup)
            m.integral += KI * error_s * n * ds / 1e6
            m.integral = max(-limit, min(limit, m.integral))
        steer = limit * (FAST_FACTOR if abs(m.error_us) > FAST_ERROR_US else 1.0)
        correction = max(-steer, min(steer, correction))
        return [self._advance_part(m, epoch.number, seg.j0, n, step * (1 + correction), fade_out)]

    def _advance_part(
        self,
        m: _Motion,
        epoch: int,
        j0: int,
        n: int,
        step: float,
        fade_out: NDArray[np.float32] | None,
    ) -> _Part:
        """The main trajectory over n frames from m.pos, fading in after a start."""
        gain = fade_out
        if m.since_start < m.fade_len:
            ramp = np.minimum(1, (m.since_start + np.arange(1, n + 1)) / m.fade_len)
            fade_in = ramp.astype(np.float32)
            gain = fade_in if gain is None else fade_in * gain
        part = _Part(epoch, j0, n, m.pos, step, gain, main=True)
        m.pos += n * step
        m.since_start += n
        m.ratio = step
        return part

    def _mix(self, m: _Motion, parts: list[_Part], out: NDArray[np.float32]) -> None:
        """Fetch every part's source (one lock), then interpolate them into `out`."""
        fetched = []
        with self._lock:
            for p in parts:
                a, b = source_span(p.pos0, p.step, p.n)
                track = self._tracks.get(p.epoch)
                if track is None:
                    src = np.zeros((b - a, CHANNELS), dtype=np.float32)
                    missing = np.arange(a, b) >= 0
                else:
                    src, missing = track.fetch(a, b)
                    if p.main:
                        track.prune(a - PRUNE_MARGIN)
                fetched.append((a, src, missing))
            self._keep_tracks()
        for p, (a, src, missing) in zip(parts, fetched, strict=True):
            pos = p.pos0 + p.step * np.arange(p.n, dtype=np.float64)
            chunk = interpolate(src, a, pos)
            centre = np.floor(pos).astype(np.intp) - a
            gap = missing[centre] | missing[centre + 1]
            if p.gain is not None:
                chunk *= p.gain[:, None]
            if gap.any():
                chunk[gap] = 0
            out[p.j0 : p.j0 + p.n] += chunk
            if p.main:
                rises = int(gap[0] and not m.starving) + int(np.count_nonzero(gap[1:] & ~gap[:-1]))
                m.underruns += rises
                m.starving = bool(gap[-1])

    def _apply_gain(self, m: _Motion, volume: float, out: NDArray[np.float32]) -> None:
        if volume != m.gain_target:
            m.gain_target = volume
            m.gain_step = (volume - m.gain) / VOLUME_RAMP_FRAMES
        if m.gain == m.gain_target:
            if m.gain != 1.0:
                out *= np.float32(m.gain)
            return
        gains = m.gain + m.gain_step * np.arange(1, len(out) + 1)
        if m.gain_step > 0:
            np.minimum(gains, m.gain_target, out=gains)
        else:
            np.maximum(gains, m.gain_target, out=gains)
        out *= gains.astype(np.float32)[:, None]
        m.gain = float(gains[-1])

    def _publish(self, m: _Motion, segments: list[_Segment], measured: float | None) -> None:
        epoch = segments[-1].epoch if segments else None
        playing = epoch is not None and epoch.playing and m.epoch == epoch.number
        start = m.pos - m.ratio * (segments[-1].j1 - segments[-1].j0) if playing else 0.0
        position = start if playing else (epoch.k0 if epoch is not None else 0)
        stats = SyncStats(
            error_us=m.error_us if playing else 0.0,
            underruns=m.underruns,
            resyncs=m.resyncs,
            rate_ratio=m.ratio,
            device_ppm=0.0 if measured is None else (measured / self.device_rate - 1) * 1e6,
            playing=playing,
            epoch=None if epoch is None else epoch.number,
            position_ms=position * 1000 / RATE,
        )
        with self._lock:
            if m.generation == self._generation:
                self._published = stats
                self._where = (epoch.number, m.pos) if playing and epoch is not None else None


def _hand_over(m: _Motion, device_rate: float) -> None:
    """When the measured device rate moves the feed-forward, take that much out of what
    the integrator learned meanwhile (never past zero): else the first measurement,
    arriving on top of a half-learned integrator, overshoots by the learned part."""
    if m.device_rate and device_rate != m.device_rate:
        delta = m.device_rate / device_rate - 1  # relative change of the feed-forward
        if delta * m.integral > 0:
            m.integral = m.integral - delta if abs(delta) < abs(m.integral) else 0.0
    m.device_rate = device_rate
