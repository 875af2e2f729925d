"""The command line becomes settings: TLS hosting and pinned fingerprints from every start."""

from __future__ import annotations

from pathlib import Path

import pytest

from loudsync_tui.cli import build_parser
from loudsync_tui.tui.settings import settings_from_args


@pytest.mark.parametrize(
    "argv",
    [[], ["host", "--session-name", "Friday"], ["join", "10.0.0.5"]],
    ids=["browse", "host", "join"],
)
def test_every_start_hosts_with_tls_and_pins_in_the_config_dir(
    argv: list[str], tmp_path: Path
) -> None:
    args = build_parser().parse_args(["--config-dir", str(tmp_path), *argv])
    settings = settings_from_args(args)
    assert settings.host.tls is True
    assert settings.host.key_dir == str(tmp_path)
    assert settings.guest.trust_dir == str(tmp_path)


def test_no_tls_host_serves_plain(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--config-dir", str(tmp_path), "host", "--no-tls"])
    assert settings_from_args(args).host.tls is False


@pytest.mark.parametrize(
    "argv",
    [[], ["host", "--session-name", "Friday"], ["join", "10.0.0.5"]],
    ids=["browse", "host", "join"],
)
def test_every_start_hosts_asking_for_a_higher_priority(argv: list[str], tmp_path: Path) -> None:
    args = build_parser().parse_args(["--config-dir", str(tmp_path), *argv])
    assert settings_from_args(args).host.raise_priority is True


@pytest.mark.parametrize(
    "argv", [["--normal-priority", "host"], ["host", "--normal-priority"], ["--normal-priority"]]
)
def test_normal_priority_hosts_at_the_priority_it_starts_with(
    argv: list[str], tmp_path: Path
) -> None:
    args = build_parser().parse_args(["--config-dir", str(tmp_path), *argv])
    assert settings_from_args(args).host.raise_priority is False


def test_each_instance_and_each_config_dir_logs_to_its_own_file(tmp_path: Path) -> None:
    parser = build_parser()
    first = settings_from_args(parser.parse_args(["--config-dir", str(tmp_path / "a")]))
    second = settings_from_args(parser.parse_args(["--config-dir", str(tmp_path / "a")]))
    other = settings_from_args(parser.parse_args(["--config-dir", str(tmp_path / "b")]))
    assert first.log_file == str(tmp_path / "a" / "loudsync-tui.log")
    assert second.log_file == str(tmp_path / "a" / "loudsync-tui-2.log")  # a second instance
    assert other.log_file == str(tmp_path / "b" / "loudsync-tui.log")
