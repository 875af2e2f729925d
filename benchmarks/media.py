"""Music for tests, made on the spot: deterministic noise in 48 kHz stereo WAV files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def noise(seconds: float, seed: int = 1, level: int = 8000) -> NDArray[np.int16]:
    """Broadband noise: every window of it is unlike every other, so any misplaced
    sample shows (in a comparison or a cross-correlation)."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * 48_000)
    return rng.integers(-level, level, size=(frames, 2), dtype=np.int16)


def write_wav(path: Path, samples: NDArray[np.int16], rate: int = 48_000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return path
