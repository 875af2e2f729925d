"""benchmarks.tls_handshake measures real handshakes on loopback, both settings in turn."""

from __future__ import annotations

import re

import pytest

from benchmarks.tls_handshake import main


def test_it_prints_both_settings_in_turn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--count", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [re.match(r"session tickets (\d)", line)[1] for line in lines] == ["2", "0", "2", "0"]  # type: ignore[index]
    assert all(re.search(r"CPU per handshake \(both ends\) [\d,]+ µs", line) for line in lines)


def test_no_handshakes_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--count", "0"])
    assert exited.value.code == 2
    assert "--count must be positive" in capsys.readouterr().err
