"""This device's identity: a key pair kept in the user's config directory, and its id.

Resume tokens and bans refer to the device id, so it must survive restarts; the id is
derived from the public key, so a JOIN can prove it (security/device_key.py) and nobody
else can take it. Two app instances of one user on one machine must not share an
identity (they could not host and join each other), so each running instance holds a
lock on its slot and a second instance takes the next free one.
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

from loudsync_tui.security import device_key
from loudsync_tui.security.device_key import DeviceKey

APP_NAME = "loudsync-tui"
ENV_CONFIG_DIR = "LOUDSYNC_CONFIG_DIR"
MAX_INSTANCES = 64


@dataclass(frozen=True, slots=True)
class Identity:
    device_id: str
    slot: int
    """0 for the first running instance, 1 for the second, and so on."""
    key: DeviceKey
    """This slot's key pair; `device_id` is derived from it."""


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
        key_file = directory / f"device{suffix}.key"
        try:
            key = device_key.load_or_create(key_file)
        except ValueError as exc:
            raise OSError(f"{key_file} is not a device key ({exc}); move it away") from None
        device_id = key.device_id
        # The id file is only a readable copy now (the key decides); ids of the old
        # random form (`dev-...`) are replaced, as nobody could prove them.
        id_file = directory / f"device{suffix}.id"
        if not id_file.exists() or id_file.read_text(encoding="utf-8").strip() != device_id:
            id_file.write_text(device_id + "\n", encoding="utf-8")
        return Identity(device_id, slot, key)
    raise OSError(f"more than {MAX_INSTANCES} instances are running from {directory}")
