"""This machine's output settings, kept between runs: its volume and latency offset
belong to its speakers (a Bluetooth box is always that late), not to one session."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from loudsync_tui.config import OutputSettings

FILE_NAME = "output.json"


def load(directory: Path) -> OutputSettings:
    """What was saved, or the defaults (a missing or damaged file is not an error: the
    next save replaces it)."""
    try:
        raw = json.loads((directory / FILE_NAME).read_text())
        volume = float(raw.get("volume", 1.0))
        offset = float(raw.get("latencyOffsetMs", 0.0))
    except (OSError, ValueError, TypeError, AttributeError):
        return OutputSettings()
    return OutputSettings(
        volume=min(1.5, max(0.0, volume)), latency_offset_ms=min(2000.0, max(-2000.0, offset))
    )


def save(directory: Path, settings: OutputSettings) -> None:
    """Written whole to a temporary file, then renamed: never half a file."""
    with contextlib.suppress(OSError):  # an unwritable config dir costs only the memory
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{FILE_NAME}.tmp"
        tmp.write_text(
            json.dumps({"volume": settings.volume, "latencyOffsetMs": settings.latency_offset_ms})
        )
        os.replace(tmp, directory / FILE_NAME)
