"""The session clock a guest estimates from PING/PONG timestamps, and when to probe it.

Pure rules: samples and times in, estimates out. All times are integer microseconds;
"local" is the guest's monotonic clock, "session" the host's clock since the session
started, and session = local + offset, where the offset drifts at `skew_ppm`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

WINDOW_US = 60_000_000
"""A minute of samples: a long baseline for the skew (100 µs of noise is under 2 ppm over
60 s), yet short enough that a crystal's temperature drift keeps a straight line true."""
WINDOW_MAX = 128
"""Caps the work of a refit (O(n) a sample) even if probes come far faster than planned."""
WINDOW_MIN_SAMPLES = 30
"""Samples older than the window stay while it holds fewer than this: an idle guest
probes every 10 s, and the minute's dozen samples alone would bound the offset poorly."""
BEST_FEW = 5
"""The lowest-round-trip samples whose scatter says how well the fit knows the offset."""
SIGMA_FLOOR_US = 50.0
"""Timestamp jitter of an ideal exchange (scheduling, wakeups): round-trip differences
smaller than this say nothing about which sample is better."""
RTT_MARGIN_US = 5_000
"""Samples more than this (or more than the best round trip) above the best are dropped:
their error bound is too loose to be worth even a tiny weight."""
MIN_SKEW_SPAN_US = 2_000_000
"""Below 2 s of spread, 100 µs of noise would already be a 50 ppm slope: use skew 0."""
SKEW_SIGNIFICANCE = 2.0
"""A fitted skew within two standard errors of zero is taken as zero: on loopback one
idle sample after the burst made a 7.7 ppm skew out of 30 µs of noise, whose error then
grew by 8 µs a second (benchmarks.clock); a real 500 ppm clears the bar within 3 s."""
GAP_SAMPLES = 3
"""The tightest bounds of each kind whose spacing says how well the bounds are known."""
STEP_MIN_US = 2_000
STEP_FACTOR = 20.0
STEP_RUN = 3
"""A clock step is this many consecutive samples off the line by more than their round
trip and max(2 ms, 20 x uncertainty) explain; fewer is an outlier, dropped."""


class _Bounds(NamedTuple):
    lower: float
    upper: float
    spread: float
    """How far the middle of the bounds may be off: half the root sum of squares of each
    bound's spacing (see `ClockEstimator._bounds`)."""


@dataclass(frozen=True)
class ClockSample:
    """One exchange: t1/t4 on the guest's local clock, t2/t3 on the session clock."""

    t1: int
    t2: int
    t3: int
    t4: int

    @property
    def offset_us(self) -> float:
        """Session minus local, exact if both network legs took equally long."""
        return ((self.t2 - self.t1) + (self.t3 - self.t4)) / 2

    @property
    def rtt_us(self) -> int:
        """Time on the network; the offset is wrong by at most half of it."""
        return (self.t4 - self.t1) - (self.t3 - self.t2)

    @property
    def local_mid_us(self) -> float:
        """The local instant the offset describes."""
        return (self.t1 + self.t4) / 2


@dataclass(frozen=True)
class ClockEstimate:
    """session = local + offset_us + skew_ppm * 1e-6 * (local - at_local_us)."""

    offset_us: int
    skew_ppm: float
    uncertainty_us: float
    rtt_us: int
    samples: int
    at_local_us: int

    def session_us(self, local_us: float) -> float:
        """The session time at local monotonic time `local_us`."""
        return local_us + self.offset_us + self.skew_ppm * 1e-6 * (local_us - self.at_local_us)


class ClockEstimator:
    """Fits offset and skew as a line over local time from the window's samples.

    Selection: every sample within min_rtt + max(5 ms, min_rtt) takes part, weighted by
    1 / (excess_rtt / 2 + 50 µs)^2. A sample's error is bounded by half its round trip
    beyond the path's minimum, so the weight follows that bound, while keeping all good
    samples (not just the best quarter) keeps the fit's time spread: a hard quantile
    can pick only burst samples and leave the slope undetermined.
    """

    def __init__(self, window_us: int = WINDOW_US, max_samples: int = WINDOW_MAX) -> None:
        self.window_us = window_us
        self._samples: deque[ClockSample] = deque(maxlen=max_samples)
        self._suspects: list[ClockSample] = []
        self._estimate: ClockEstimate | None = None
        self._prior_skew: float | None = None
        self.resets = 0
        """How many times a clock step (or a run of bad samples) restarted the fit."""

    def reset(self) -> None:
        """Forget everything, e.g. on reconnecting to a (maybe different) host."""
        self._samples.clear()
        self._suspects.clear()
        self._estimate = None
        self._prior_skew = None

    def add(self, sample: ClockSample) -> bool:
        """Take a sample; False if it is impossible or (so far) a lone outlier."""
        if sample.t3 < sample.t2 or sample.t4 < sample.t1 or sample.rtt_us < 0:
            return False
        est = self._estimate
        if est is not None and self._off_line(sample, est):
            self._suspects.append(sample)
            if len(self._suspects) < STEP_RUN:
                return False
            self._samples.clear()  # a step: start over from the run that shows it
            self._samples.extend(self._suspects)
            self.resets += 1
            # A step moves the offset, not the crystal's rate: keep the known skew until
            # the new samples can say it again.
            self._prior_skew = est.skew_ppm * 1e-6
        else:
            self._samples.append(sample)
        self._suspects.clear()
        newest = max(s.local_mid_us for s in self._samples)
        while (
            len(self._samples) > WINDOW_MIN_SAMPLES
            and self._samples[0].local_mid_us < newest - self.window_us
        ):
            self._samples.popleft()
        self._estimate = self._fit(newest)
        return True

    def estimate(self) -> ClockEstimate | None:
        """The current fit, None before the first sample."""
        return self._estimate

    def session_time(self, local_us: int) -> int | None:
        """Session time at a local instant; None (not an exception) before the first
        sample, so mypy makes every caller decide what to do without a clock."""
        est = self._estimate
        return None if est is None else round(est.session_us(local_us))

    def local_time(self, session_us: int) -> int | None:
        """The local instant at which the session clock reads `session_us` (inverse)."""
        est = self._estimate
        if est is None:
            return None
        since = (session_us - est.at_local_us - est.offset_us) / (1 + est.skew_ppm * 1e-6)
        return round(est.at_local_us + since)

    def _off_line(self, sample: ClockSample, est: ClockEstimate) -> bool:
        predicted = est.offset_us + est.skew_ppm * 1e-6 * (sample.local_mid_us - est.at_local_us)
        allowed = sample.rtt_us / 2 + max(STEP_MIN_US, STEP_FACTOR * est.uncertainty_us)
        return abs(sample.offset_us - predicted) > allowed

    def _fit(self, newest: float) -> ClockEstimate:
        best = min(self._samples, key=lambda s: s.rtt_us)
        cutoff = best.rtt_us + max(RTT_MARGIN_US, best.rtt_us)
        chosen = [s for s in self._samples if s.rtt_us <= cutoff]
        # Relative coordinates: local clocks and offsets can be ~1e12 µs.
        xs = [s.local_mid_us - newest for s in chosen]
        ys = [s.offset_us - best.offset_us for s in chosen]
        ws = [1 / ((s.rtt_us - best.rtt_us) / 2 + SIGMA_FLOOR_US) ** 2 for s in chosen]
        total = sum(ws)
        mx = sum(w * x for w, x in zip(ws, xs, strict=True)) / total
        my = sum(w * y for w, y in zip(ws, ys, strict=True)) / total
        sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))
        # The samples that carry the fit, by round trip: their scatter is its noise.
        best_few = sorted(range(len(chosen)), key=lambda i: chosen[i].rtt_us)[:BEST_FEW]
        slope = self._prior_skew or 0.0
        bounds = self._bounds(slope, newest)
        slope_error_us = 0.0
        if len(chosen) >= 3 and sxx > 0 and max(xs) - min(xs) >= MIN_SKEW_SPAN_US:
            sxy = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True))
            fitted = sxy / sxx
            chi2 = sum(
                w * (y - my - fitted * (x - mx)) ** 2 for w, x, y in zip(ws, xs, ys, strict=True)
            )
            # The slope's standard error, scaled up when the residuals exceed the weights'
            # assumed noise (they are bounds from round trips, not true variances), and
            # when the best samples, which the weights take as exact, scatter more.
            best_rms = _rms(best_few, xs, ys, my - fitted * mx, fitted)
            scale = max(1.0, chi2 / max(1, len(chosen) - 2), best_rms**2 / SIGMA_FLOOR_US**2)
            se = math.sqrt(scale / sxx)
            significant = abs(fitted) > SKEW_SIGNIFICANCE * se
            # A skew below the noise is still shown when the slope assumed so far leaves
            # no offset that every sample allows, and the fitted one does.
            if significant or bounds is None:
                fitted_bounds = self._bounds(fitted, newest)
                if significant or fitted_bounds is not None:
                    slope, bounds = fitted, fitted_bounds
                    self._prior_skew = None  # the samples say it themselves now
            # What the slope's own error (or the one left out) costs at the newest sample,
            # which lies far from the weight's centre while the burst dominates the window.
            slope_error_us = (abs(fitted - slope) + se) * abs(mx)
        intercept = my - slope * mx  # the line's value at x = 0, the newest sample
        sq = sum(w * (y - intercept - slope * x) ** 2 for w, x, y in zip(ws, xs, ys, strict=True))
        offset = best.offset_us + intercept
        if bounds is not None:
            # The bounds' middle is right where the legs' quickest trips are alike, the
            # fit where the legs' delays are alike on average (they vary together). A busy
            # host reads PINGs late, so the legs of most exchanges differ the same way and
            # the fit leans with them, though each leg's quickest trip stays true (100
            # guests: the fit put one 40-55 µs off, the middle 17-30). So the middle,
            # unless the fit's best samples agree more closely than the bounds are known.
            lower, upper, spread = bounds
            fit_rms = _rms(best_few, xs, ys, intercept, slope) if len(chosen) >= 3 else math.inf
            offset = (lower + upper) / 2 if spread < fit_rms else min(max(offset, lower), upper)
        return ClockEstimate(
            offset_us=round(offset),
            skew_ppm=slope * 1e6,
            uncertainty_us=best.rtt_us / 2 + math.sqrt(sq / total) + slope_error_us,
            rtt_us=best.rtt_us,
            samples=len(self._samples),
            at_local_us=round(newest),
        )

    def _bounds(self, slope: float, newest: float) -> _Bounds | None:
        """The least and greatest offset no sample rules out, at `newest`, along `slope`.

        A leg cannot take less than no time, so each exchange bounds the offset: at most
        t2 - t1 (the PING arrived no earlier than it left), at least t3 - t4. Every bound
        holds whatever the delays, and the tightest upper and lower bounds usually come
        from different exchanges, each with one quick leg: far tighter than any single
        exchange, where both legs must be quick at once. None when the bounds cross (a
        slope off by more than the legs' slack, or a step not yet seen): the fit stands.
        """
        uppers = heapq.nsmallest(
            GAP_SAMPLES, (s.t2 - s.t1 - slope * (s.t1 - newest) for s in self._samples)
        )
        lowers = heapq.nlargest(
            GAP_SAMPLES, (s.t3 - s.t4 - slope * (s.t4 - newest) for s in self._samples)
        )
        if lowers[0] > uppers[0]:
            return None
        # The tightest of n draws lies about one spacing of the draws beyond the true
        # bound, so the spacing of the few tightest says how far each may be off.
        gaps = len(uppers) - 1 or 1
        spread = math.hypot((uppers[-1] - uppers[0]) / gaps, (lowers[0] - lowers[-1]) / gaps) / 2
        return _Bounds(lowers[0], uppers[0], spread)


def _rms(
    indices: list[int], xs: list[float], ys: list[float], intercept: float, slope: float
) -> float:
    """The RMS distance from a fit's line of the samples at `indices`: the best few by
    round trip, which carry the fit. Their weights cannot tell this: they take the best
    samples as exact."""
    return math.sqrt(sum((ys[i] - intercept - slope * xs[i]) ** 2 for i in indices) / len(indices))


class ProbeSchedule:
    """When the next clock probe is due, in monotonic seconds.

    A burst right after (re)connecting gives a first estimate within a second; then one
    a second while playing keeps the skew tracked, and the idle interval keeps a paused
    guest ready to start without a fresh burst. Each probe here is a lead: the guest
    follows its PONG at once with a second PING (`GuestSession._on_pong`), not counted.
    """

    def __init__(
        self,
        idle_interval: float = 5.0,
        burst: int = 15,
        burst_span: float = 1.0,
        settle: float = 0.0,
    ) -> None:
        self.idle_interval = idle_interval
        self.settle = settle
        """Seconds after a connect probed once a second, playing or not (the fit's window)."""
        self.burst = burst
        self.burst_span = burst_span
        self.playing = False
        self._burst_left = burst
        self._last_sent: float | None = None
        self._burst_until = 0.0
        self._settle_until = 0.0

    def connected(self, now: float) -> None:
        """Start a fresh burst (after a connect, a reconnect, or an estimator reset)."""
        self._burst_left = self.burst
        self._last_sent = None
        self._burst_until = now + 2 * self.burst_span
        self._settle_until = now + self.settle

    def sent(self, now: float) -> None:
        self._last_sent = now
        self._burst_left = max(0, self._burst_left - 1)

    def next_due(self, now: float) -> float:
        """The time of the next probe; `now` (or earlier) means send one now."""
        if self._last_sent is None:
            return now
        if self._burst_left > 0 and now < self._burst_until:  # a late burst is no burst
            gap = self.burst_span / self.burst
        elif now < self._settle_until:
            gap = 1.0  # the first minute fills the fit's window: skew is known by its end
        else:
            gap = 1.0 if self.playing else self.idle_interval
        return self._last_sent + gap
