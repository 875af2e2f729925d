"""This machine's output settings, kept between runs: its volume belongs to its speakers,
and its latency offset too (a Bluetooth box is always that late), except where the user
set one for a particular host: the app keeps that per host, by the host's device id."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from loudsync_tui.config import OutputSettings

FILE_NAME = "output.json"
HOSTS_KEPT = 64
"""Per-host offsets remembered; the oldest go first."""


def _read(directory: Path) -> dict[str, Any]:
    try:
        raw = json.loads((directory / FILE_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _write(directory: Path, raw: dict[str, Any]) -> None:
    """Written whole to a temporary file, then renamed: never half a file."""
    with contextlib.suppress(OSError):  # an unwritable config dir costs only the memory
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{FILE_NAME}.tmp"
        tmp.write_text(json.dumps(raw))
        os.replace(tmp, directory / FILE_NAME)


def _offset(value: object) -> float | None:
    try:
        return min(2000.0, max(-2000.0, float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def load(directory: Path) -> OutputSettings:
    """What was saved, or the defaults (a missing or damaged file is not an error: the
    next save replaces it)."""
    raw = _read(directory)
    try:
        volume = float(raw.get("volume", 1.0))
    except (TypeError, ValueError):
        return OutputSettings()
    offset = _offset(raw.get("latencyOffsetMs", 0.0))
    if offset is None or volume != volume:  # NaN
        return OutputSettings()
    return OutputSettings(volume=min(1.5, max(0.0, volume)), latency_offset_ms=offset)


def save(directory: Path, settings: OutputSettings) -> None:
    raw = _read(directory)
    raw["volume"] = settings.volume
    raw["latencyOffsetMs"] = settings.latency_offset_ms
    _write(directory, raw)


def host_offset(directory: Path, host_id: str) -> float | None:
    """The latency offset last set while joined to `host_id`; None if never."""
    hosts = _read(directory).get("hosts")
    if not isinstance(hosts, dict) or host_id not in hosts:
        return None
    return _offset(hosts[host_id])


def save_host_offset(directory: Path, host_id: str, offset_ms: float) -> None:
    raw = _read(directory)
    hosts = raw.get("hosts")
    hosts = dict(hosts) if isinstance(hosts, dict) else {}
    hosts.pop(host_id, None)
    hosts[host_id] = offset_ms  # newest last
    raw["hosts"] = dict(list(hosts.items())[-HOSTS_KEPT:])
    _write(directory, raw)
