"""Log lines go to a file: the terminal belongs to the app, and tracebacks do not go there."""

from __future__ import annotations

import logging
from pathlib import Path

import platformdirs

from loudsync_tui.identity import APP_NAME


def setup_file_logging() -> Path | None:
    """Log to the user's log directory; returns the file, or None if it cannot be written."""
    try:
        directory = Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "loudsync-tui.log"
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        logging.getLogger().addHandler(logging.NullHandler())
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path
