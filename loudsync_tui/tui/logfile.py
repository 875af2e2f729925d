"""Log lines go to a file: the terminal belongs to the app, and tracebacks do not go there.

Each running instance writes its own file beside its identity in the config directory
(`loudsync-tui.log`, then `loudsync-tui-2.log` for a second instance, as with the device
files), so several instances, or several config dirs, never interleave their lines.
"""

from __future__ import annotations

import logging
from pathlib import Path


def log_path(directory: Path, slot: int) -> Path:
    """The log file of the instance holding identity `slot` in `directory`."""
    return directory / ("loudsync-tui.log" if slot == 0 else f"loudsync-tui-{slot + 1}.log")


def setup_file_logging(path: Path) -> Path | None:
    """Log to `path`; returns it, or None if it cannot be written (nothing is logged then)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        logging.getLogger().addHandler(logging.NullHandler())
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path
