"""How far apart two players are, read from one stereo recording: A on the left, B on the right.

Both players play the same broadband signal (noise), each into one channel of the same sink, so
the recording is sample-aligned between them and the only clock that matters is theirs against
each other. Short windows of the left channel are cross-correlated against the right within a
bounded lag range; the integer peak is refined to a fraction of a sample by Newton's method on
the band-limited (trigonometric) interpolation of the correlation, which is exact for a signal
sampled above Nyquist, where a parabola through three points is biased by up to ~0.1 sample.

Pure numpy: imported by the tests (tests/support/pulse.py records, this measures) and by
benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

NEWTON_STEPS = 6


@dataclass(frozen=True)
class WindowOffset:
    """One window: when (its centre, seconds into the recording), how far B is behind A (µs,
    positive = right is later) and how alike the two were at that lag (normalized, 0..1)."""

    time_s: float
    offset_us: float
    quality: float


class Offsets(list[WindowOffset]):
    """The windows that matched, plus how many were skipped and why (`silent`, `weak`)."""

    def __init__(self, items: list[WindowOffset], skipped: dict[str, int]) -> None:
        super().__init__(items)
        self.skipped = skipped


def as_float(recording: NDArray[Any]) -> NDArray[np.float64]:
    """Samples as float full scale ±1, whatever parec produced (s16le or float32le)."""
    x = np.asarray(recording)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"need an (n, 2) recording, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float64) / float(-np.iinfo(x.dtype).min)
    return x.astype(np.float64)


def offsets(
    recording: NDArray[Any],
    rate: int = 48_000,
    window_s: float = 0.1,
    hop_s: float = 0.5,
    max_lag_s: float = 0.05,
    min_level: float = 1e-3,
    min_quality: float = 0.3,
) -> Offsets:
    """B's offset from A in each window of `window_s`, every `hop_s`, within ±`max_lag_s`.

    A window is skipped as `silent` when either channel's RMS is below `min_level` (full scale
    1.0), and as `weak` when the normalized correlation peak is below `min_quality`: noise
    against unrelated noise peaks near 4/sqrt(window samples), the same signal near 1.0.
    """
    x = as_float(recording)
    width = round(window_s * rate)
    lag = round(max_lag_s * rate)
    hop = max(1, round(hop_s * rate))
    size = _fft_size(2 * width + 2 * lag)
    freqs: NDArray[np.float64] = 2.0 * np.pi * np.fft.rfftfreq(size).astype(np.float64)
    found: list[WindowOffset] = []
    skipped = {"silent": 0, "weak": 0}
    for start in range(lag, len(x) - width - lag + 1, hop):
        left = x[start : start + width, 0]
        right = x[start - lag : start + width + lag, 1]
        if _rms(left) < min_level or _rms(right[lag : lag + width]) < min_level:
            skipped["silent"] += 1
            continue
        spectrum = np.conj(np.fft.rfft(left, size)) * np.fft.rfft(right, size)
        corr = np.fft.irfft(spectrum, size)[: 2 * lag + 1]
        peak = int(np.argmax(corr))
        fine, height = _refine(spectrum, freqs, size, peak, float(corr[peak]))
        aligned = right[peak : peak + width]
        energy = float(np.dot(left, left)) * float(np.dot(aligned, aligned))
        quality = min(1.0, height / np.sqrt(energy)) if energy > 0 else 0.0
        if quality < min_quality:
            skipped["weak"] += 1
            continue
        time_s = (start + width / 2) / rate
        found.append(WindowOffset(time_s, (fine - lag) / rate * 1e6, quality))
    return Offsets(found, skipped)


def summary(offs: list[WindowOffset]) -> dict[str, float | int]:
    """Median offset, how far windows stray from it (p95 and max of |offset - median|), p95 and
    max of |offset| (µs), the worst quality, and counts."""
    skipped = sum(getattr(offs, "skipped", {}).values())
    if not offs:
        return {"count": 0, "skipped": skipped}
    values = np.array([o.offset_us for o in offs])
    median = float(np.median(values))
    spread = np.abs(values - median)
    return {
        "count": len(values),
        "skipped": skipped,
        "median_us": median,
        "p95_abs_us": float(np.percentile(np.abs(values), 95)),
        "max_abs_us": float(np.max(np.abs(values))),
        "spread_p95_us": float(np.percentile(spread, 95)),
        "spread_max_us": float(np.max(spread)),
        "min_quality": float(min(o.quality for o in offs)),
    }


def _refine(
    spectrum: NDArray[np.complex128],
    freqs: NDArray[np.float64],
    size: int,
    peak: int,
    height: float,
) -> tuple[float, float]:
    """Where (a correlation index, fractional) and how high the band-limited interpolation of
    the correlation peaks, by Newton's method from the integer `peak` of `height`. The
    interpolation is c(t) = Re sum_k w_k S_k e^(i w_k t) / size over the one-sided spectrum,
    whose derivatives are exact too."""
    weights = np.full(len(freqs), 2.0)
    weights[0] = 1.0
    if size % 2 == 0:
        weights[-1] = 1.0
    s = weights * spectrum / size
    t = float(peak)
    for _ in range(NEWTON_STEPS):
        rotated = s * np.exp(1j * freqs * t)
        d1 = float(np.sum(-freqs * rotated.imag))
        d2 = float(np.sum(-(freqs**2) * rotated.real))
        if d2 >= 0:  # not at a maximum: keep the integer peak
            return float(peak), height
        step = float(np.clip(-d1 / d2, -0.5, 0.5))
        t += step
        if abs(step) < 1e-6:
            break
    if abs(t - peak) > 1.0:
        return float(peak), height
    value = float(np.sum((s * np.exp(1j * freqs * t)).real))
    return t, max(value, height)


def _rms(x: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(x * x)))


def _fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c at least n: as fast as a power of two, much less padding."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best
