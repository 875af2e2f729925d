"""The app as a separate process, as a user runs it: `python -m loudsync_tui ARGS`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def launch(
    *args: str,
    config_dir: Path,
    stdout: int = asyncio.subprocess.PIPE,
    stderr: int = asyncio.subprocess.PIPE,
    stdin: int = asyncio.subprocess.DEVNULL,
    columns: int = 200,
    env: dict[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """Its own config dir (so its own identity), no stdin unless asked, wide enough that
    no line wraps; `env` is added to this process's environment."""
    env = {
        **os.environ,
        "LOUDSYNC_CONFIG_DIR": str(config_dir),
        "COLUMNS": str(columns),
        **(env or {}),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loudsync_tui",
        *args,
        stdout=stdout,
        stderr=stderr,
        stdin=stdin,
        env=env,
        cwd=ROOT,
    )
