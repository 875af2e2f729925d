"""Option values are checked on the command line: a usage error exits 2 with the reason."""

from __future__ import annotations

import pytest

from loudsync_tui.cli import build_parser, main


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["join", "h", "--pin", "abc"], "a PIN is digits only"),
        (["join", "h", "--pin", "12"], "at least 4 digits"),
        (["host", "--pin", "12"], "at least 4 digits"),
        (["host", "--pin", "\uff11\uff12\uff13\uff14"], "digits only"),  # fullwidth: not ASCII
        (["host", "--session-id", "a b"], "a session id is 1-128 letters"),
        (["join", "h", "--session-id", "x" * 129], "a session id is 1-128 letters"),
        (["host", "--session-id", "\x1b[2J"], "a session id is 1-128 letters"),
        (["host", "--session-name", "Party\x1b]0;x\x07"], "control or direction characters"),
        (["--name", "Eve\n[20:48:09] Grace"], "control or direction characters"),
        (["join", "h", "--name", "x" * 65], "a name has 1-64 characters"),
        (["host", "--session-name", ""], "a name has 1-64 characters"),
        (["host", "--volume", "2"], "a volume must be 0 to 1.5"),
        (["host", "--buffer-ms", "5"], "a buffer in ms must be 20 to 10000"),
        (["join", "h", "--latency-offset-ms", "ten"], "expected an offset in ms"),
        (["join", "h", "--dac-skew-ppm", "9000"], "a skew in ppm must be -5000 to 5000"),
        (["host", "--codec", "mp3"], "invalid choice: 'mp3'"),
    ],
)
def test_bad_values_exit_2_with_the_reason(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    assert reason in capsys.readouterr().err


def test_good_values_pass_and_a_bare_pin_asks_for_a_generated_one() -> None:
    args = build_parser().parse_args(["host", "--pin", "--session-id", "Fri_day-1.0"])
    assert args.pin == ""
    assert args.session_id == "Fri_day-1.0"
    assert build_parser().parse_args(["join", "h", "--pin", "0042"]).pin == "0042"


def test_commands_on_stdin_need_headless(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["host", "--commands"])
    assert exited.value.code == 2
    assert "--commands goes with --headless" in capsys.readouterr().err


def test_the_app_takes_the_sound_options() -> None:
    args = build_parser().parse_args(
        ["host", "--play", "a.flac", "b", "--buffer-ms", "120", "--no-local-audio"]
    )
    settings_args = (args.play, args.buffer_ms, args.audio)
    assert settings_args == (["a.flac", "b"], 120.0, False)
