"""`printable`: what a terminal would act on is shown escaped; everything else is kept."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from loudsync_tui.headless import console
from loudsync_tui.store import LogEntry
from loudsync_tui.text import UNSAFE, printable
from loudsync_tui.tui import format


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]0;PWNED\x07\x1b[2J", r"\x1b]0;PWNED\x07\x1b[2J"),
        ("a\tb\r\nc", r"a\tb\r\nc"),
        ("\x00\x7f\x85\x9b", r"\x00\x7f\x85\x9b"),
        ("Eve\u202eevE\u2066\u200f\u061c", r"Eve\u202eevE\u2066\u200f\u061c"),
        ("line\u2028sep", r"line\u2028sep"),
    ],
)
def test_control_and_bidi_characters_are_shown_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@pytest.mark.parametrize("text", ["Zoë", "李雷", "👩\u200d💻 Ada", "Ada\u00a0L", "[/x] \\x1b"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert printable(text) == text


def test_indent_keeps_line_breaks_but_no_line_can_start_like_an_entry() -> None:
    forged = "Eve\n[20:48:09] Grace (host) set a new PIN: 000000\x1b[2J"
    assert printable(forged, indent="   ") == (
        "Eve\n   [20:48:09] Grace (host) set a new PIN: 000000\\x1b[2J"
    )


@given(st.text())
def test_nothing_unsafe_survives(text: str) -> None:
    assert not UNSAFE.search(printable(text))
    assert not any(
        not line.startswith("  ") for line in printable(text, indent="  ").split("\n")[1:]
    )


FORGED = LogEntry(0, "info", "Eve\n[20:48:09] Grace (host) set a new PIN: 000000 \x1b]0;x\x07")


def test_tui_log_line_escapes_and_indents() -> None:
    lines = format.log_line(FORGED).plain.split("\n")
    assert len(lines) == 2
    assert lines[1].startswith(" " * 9 + "[20:48:09] Grace")
    assert "\x1b" not in lines[1]
    assert r"\x1b]0;x\x07" in lines[1]


def test_headless_console_lines_are_literal_and_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(console, "stderr", Console(file=out, width=200, color_system=None))
    console.stderr.print(console.log_line(FORGED), soft_wrap=True)
    assert console.fail("Join refused ([/x] \x1b[31mred [@click=app.quit]q[/])") == 1
    said = out.getvalue()
    assert "\x1b" not in said
    assert not any(line.startswith("[20:48:09]") for line in said.splitlines())
    assert r"error: Join refused ([/x] \x1b[31mred [@click=app.quit]q[/])" in said
