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
    columns: int = 200,
) -> asyncio.subprocess.Process:
    """Its own config dir (so its own identity), no stdin, wide enough that no line wraps."""
    env = {**os.environ, "LOUDSYNC_CONFIG_DIR": str(config_dir), "COLUMNS": str(columns)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loudsync_tui",
        *args,
        stdout=stdout,
        stderr=stderr,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
