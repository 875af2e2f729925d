"""The device key on disk (issue 16, item 4): owner-only, stable across restarts, one per
running instance, and the id derived from it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from loudsync_tui.identity import load_identity
from loudsync_tui.security import device_key
from loudsync_tui.security.device_key import DeviceKey

ROOT = Path(__file__).resolve().parents[2]


def _id_in_a_new_process(directory: Path) -> str:
    """load_identity as a fresh run of the app does (its lock ends with the process)."""
    code = (
        "import sys; from pathlib import Path; from loudsync_tui.identity import load_identity; "
        "print(load_identity(Path(sys.argv[1])).device_id)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code, str(directory)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    return done.stdout.strip()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_is_owner_only_and_the_id_is_stable_across_restarts(tmp_path: Path) -> None:
    first = _id_in_a_new_process(tmp_path)
    assert first.startswith("k-")
    assert _mode(tmp_path / "device.key") == 0o600
    assert _id_in_a_new_process(tmp_path) == first
    assert device_key.load(tmp_path / "device.key").device_id == first
    assert (tmp_path / "device.id").read_text().strip() == first
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_two_running_instances_get_two_keys(tmp_path: Path) -> None:
    one, two = load_identity(tmp_path), load_identity(tmp_path)
    assert (one.slot, two.slot) == (0, 1)
    assert one.device_id != two.device_id
    assert one.key.device_id == one.device_id
    assert two.key.device_id == two.device_id
    assert _mode(tmp_path / "device.key") == 0o600
    assert _mode(tmp_path / "device-2.key") == 0o600


def test_an_old_random_id_is_replaced_by_the_keys(tmp_path: Path) -> None:
    (tmp_path / "device.id").write_text("dev-oldrandom\n")
    identity = load_identity(tmp_path)
    assert identity.device_id == identity.key.device_id != "dev-oldrandom"


def test_a_key_others_can_read_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    key = DeviceKey.generate()
    device_key.save(key, path)
    os.chmod(path, 0o644)
    assert device_key.load(path) == key
    assert _mode(path) == 0o600


def test_a_file_that_is_not_a_key_is_a_readable_error(tmp_path: Path) -> None:
    (tmp_path / "device.key").write_text("garbage")
    with pytest.raises(OSError, match=r"device\.key"):
        load_identity(tmp_path)


def test_the_key_reaches_the_join_config_and_the_host_option_its_config(tmp_path: Path) -> None:
    from loudsync_tui.cli import build_parser
    from loudsync_tui.config import host_config_from_args
    from loudsync_tui.tui.settings import settings_from_args

    args = build_parser().parse_args(["--config-dir", str(tmp_path), "join", "10.0.0.5"])
    settings = settings_from_args(args)
    key = device_key.load(tmp_path / "device.key")
    assert settings.device_id == key.device_id == settings.guest.device_id
    assert settings.guest.device_key == key.private
    host_args = build_parser().parse_args(["host", "--allow-unproven"])
    assert host_config_from_args(host_args, "k-x", "Grace").allow_unproven is True
    plain = build_parser().parse_args(["host"])
    assert host_config_from_args(plain, "k-x", "Grace").allow_unproven is False
