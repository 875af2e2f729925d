"""benchmarks.clock_model: the model scores runs as the benchmark does, and is repeatable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import clock_model
from benchmarks.clock_model import Scenario, main, one_run


def test_quiet_legs_give_errors_within_their_spread() -> None:
    median, worst = one_run(Scenario("quiet", 10.0, 0.05), seed=1)
    assert median <= worst <= 30  # legs within 50 µs of each other bound the offset so


def test_a_run_is_the_same_for_the_same_seed_and_wider_legs_err_more() -> None:
    assert one_run(clock_model.SCENARIOS[0], 3) == one_run(clock_model.SCENARIOS[0], 3)
    narrow = sorted(one_run(Scenario("narrow", 10.0, 0.5), s)[0] for s in range(20))
    wide = sorted(one_run(Scenario("wide", 10.0, 5.0), s)[0] for s in range(20))
    assert narrow[10] < wide[10]


def test_main_writes_its_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.json"
    assert main(["--runs", "3", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["command"] == "python -m benchmarks.clock_model --runs 3 --output " + str(out)
    assert [f["scenario"] for f in result["figures"]] == [s.name for s in clock_model.SCENARIOS]
    assert all(f["runs"] == 3 for f in result["figures"])
    assert "runs missing" in capsys.readouterr().out


def test_no_runs_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--runs", "0"])
    assert exited.value.code == 2
    assert "--runs must be positive" in capsys.readouterr().err
