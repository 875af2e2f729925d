"""This device's identity: a stable id kept in the user's config directory.

Resume tokens and bans refer to the device id, so it must survive restarts. Two app
instances of one user on one machine must not share an id (they could not host and
join each other), so each running instance holds a lock on its identity file and a
second instance takes the next free one.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import platformdirs

APP_NAME = "loudsync-tui"
ENV_CONFIG_DIR = "LOUDSYNC_CONFIG_DIR"
MAX_INSTANCES = 64


@dataclass(frozen=True, slots=True)
class Identity:
    device_id: str
    slot: int
    """0 for the first running instance, 1 for the second, and so on."""


def config_dir(override: str | None = None) -> Path:
    """`--config-dir`, else $LOUDSYNC_CONFIG_DIR, else the platform's user config dir."""
    chosen = override or os.environ.get(ENV_CONFIG_DIR)
    if chosen:
        return Path(chosen).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_name() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = ""
    return (name or "guest")[:64]


def new_id(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(9)


_held_locks: list[IO[str]] = []


def load_identity(directory: Path) -> Identity:
    """The identity of this running instance, created on first use.

    Raises OSError with a readable message when the directory cannot be used.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_INSTANCES):
        suffix = "" if slot == 0 else f"-{slot + 1}"
        lock = (directory / f"device{suffix}.lock").open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _held_locks.append(lock)  # held for the life of the process
        id_file = directory / f"device{suffix}.id"
        if id_file.exists():
            device_id = id_file.read_text(encoding="utf-8").strip()
            if device_id:
                return Identity(device_id, slot)
        device_id = new_id("dev-")
        id_file.write_text(device_id + "\n", encoding="utf-8")
        return Identity(device_id, slot)
    raise OSError(f"more than {MAX_INSTANCES} instances are running from {directory}")
