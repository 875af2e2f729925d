"""The offset analysis on synthetic recordings whose true offset is known to the nanosecond:
white noise on the left, the same noise delayed on the right (by a band-limited shift, so
fractions of a sample are exact too)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from benchmarks.sync_analysis import as_float, offsets, summary

RATE = 48_000
SAMPLE_US = 1e6 / RATE
TOLERANCE_US = 2.0
LEVEL = 0.2


def noise(seconds: float, seed: int = 1) -> NDArray[np.float64]:
    return np.random.default_rng(seed).standard_normal(round(seconds * RATE)) * LEVEL


def shifted(x: NDArray[np.float64], samples: float) -> NDArray[np.float64]:
    """`x` delayed by `samples` (any real number) by a phase shift: exact for a periodic,
    band-limited signal, which is what the FFT takes `x` to be."""
    spectrum = np.fft.rfft(x)
    spectrum *= np.exp(-2j * np.pi * np.fft.rfftfreq(len(x)) * samples)
    spectrum[-1] = 0  # the Nyquist bin cannot carry a fractional shift and stay real
    return np.fft.irfft(spectrum, len(x))


def varied(
    x: NDArray[np.float64], delay: NDArray[np.float64], taps: int = 32
) -> NDArray[np.float64]:
    """`x` delayed by `delay[n]` samples at sample n: a Blackman-windowed sinc centred on each
    fractional read position, symmetric about it, so its phase is exactly that delay."""
    position = np.arange(len(x)) - delay
    base = np.floor(position).astype(np.int64)
    frac = position - base
    out = np.zeros(len(x))
    for k in range(-taps + 1, taps + 1):
        index = base + k
        t = k - frac
        weight = np.sinc(t) * (
            0.42 + 0.5 * np.cos(np.pi * t / taps) + 0.08 * np.cos(2 * np.pi * t / taps)
        )
        valid = (index >= 0) & (index < len(x))
        out[valid] += x[index[valid]] * weight[valid]
    return out


def stereo(left: NDArray[np.float64], right: NDArray[np.float64]) -> NDArray[np.int16]:
    """As parec records it: s16le frames."""
    return np.round(np.stack([left, right], axis=1) * 32_767).astype(np.int16)


@pytest.mark.parametrize("delay", [0.0, 1.0, 7.0, 0.5, 0.37, -0.25, -3.71, 250.13, -1999.6])
def test_constant_delay_found_to_a_fraction_of_a_microsecond(delay: float) -> None:
    x = noise(3.0)
    found = offsets(stereo(x, shifted(x, delay)), RATE, hop_s=0.25)

    assert len(found) >= 10
    assert found.skipped == {"silent": 0, "weak": 0}
    for window in found:
        assert window.offset_us == pytest.approx(delay * SAMPLE_US, abs=TOLERANCE_US)
        assert window.quality > 0.99
    stats = summary(found)
    assert stats["median_us"] == pytest.approx(delay * SAMPLE_US, abs=0.1)
    assert stats["spread_max_us"] < 0.5


def test_float_recordings_are_read_as_they_are() -> None:
    x = noise(1.0)
    recording = np.stack([x, shifted(x, 2.5)], axis=1).astype(np.float32)

    found = offsets(recording, RATE, hop_s=0.2)

    assert len(found) >= 3
    assert all(w.offset_us == pytest.approx(2.5 * SAMPLE_US, abs=TOLERANCE_US) for w in found)


def test_a_drifting_delay_is_followed_window_by_window() -> None:
    """A guest correcting its clock slowly: -200 µs to +300 µs over 5 s (100 ppm). A window's
    offset is the mean delay over it, which on a ramp is the delay at its centre."""
    seconds = 5.0
    x = noise(seconds, seed=2)
    t = np.arange(len(x)) / RATE
    delay_us = -200.0 + 100.0 * t
    found = offsets(stereo(x, varied(x, delay_us / SAMPLE_US)), RATE, hop_s=0.2)

    assert len(found) >= 20
    for window in found:
        assert window.offset_us == pytest.approx(-200.0 + 100.0 * window.time_s, abs=TOLERANCE_US)


def test_a_jump_shows_in_the_windows_after_it() -> None:
    x = noise(4.0, seed=3)
    jump = len(x) // 2
    right = np.concatenate([shifted(x, 3.25)[:jump], shifted(x, -40.6)[jump:]])
    found = offsets(stereo(x, right), RATE, hop_s=0.1)

    before = [w for w in found if w.time_s < 2.0 - 0.15]
    after = [w for w in found if w.time_s > 2.0 + 0.15]
    assert len(before) >= 10
    assert len(after) >= 10
    assert all(w.offset_us == pytest.approx(3.25 * SAMPLE_US, abs=TOLERANCE_US) for w in before)
    assert all(w.offset_us == pytest.approx(-40.6 * SAMPLE_US, abs=TOLERANCE_US) for w in after)


def test_lags_beyond_the_range_are_not_matched() -> None:
    x = noise(2.0)
    found = offsets(stereo(x, shifted(x, 0.06 * RATE)), RATE, max_lag_s=0.05)

    assert list(found) == []
    assert found.skipped["weak"] > 0


def test_silent_windows_are_skipped_and_counted() -> None:
    """Right plays only in the middle second: the windows with either side silent are skipped."""
    x = noise(3.0)
    right = shifted(x, 1.5)
    right[:RATE] = 0
    right[2 * RATE :] = 0
    found = offsets(stereo(x, right), RATE, hop_s=0.1)

    assert found.skipped["silent"] >= 15
    assert found.skipped["weak"] == 0
    assert len(found) >= 5
    assert all(1.0 <= w.time_s <= 2.0 for w in found)
    assert summary(found)["skipped"] == found.skipped["silent"]


def test_unrelated_channels_give_no_matches() -> None:
    found = offsets(stereo(noise(3.0, seed=4), noise(3.0, seed=5)), RATE, hop_s=0.1)

    assert list(found) == []
    assert found.skipped["silent"] == 0
    assert found.skipped["weak"] >= 20
    assert summary(found) == {"count": 0, "skipped": found.skipped["weak"]}


def test_unrelated_channels_peak_low_when_nothing_is_filtered() -> None:
    found = offsets(stereo(noise(3.0, seed=4), noise(3.0, seed=5)), RATE, min_quality=0.0)

    assert len(found) >= 5
    assert max(w.quality for w in found) < 0.15


def test_only_stereo_is_accepted() -> None:
    with pytest.raises(ValueError, match="shape"):
        as_float(np.zeros((10, 1), dtype=np.int16))
