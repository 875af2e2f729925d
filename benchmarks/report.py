"""The rows every benchmark table is made of, and how their figures are written."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where every benchmark writes its JSON (git-ignored)."""


@dataclass
class Row:
    figure: str
    target: str
    measured: str
    ok: bool | None
    """Whether the target holds; None where there is none, or nothing was measured."""


def us(value: float | None, missing: str = "-") -> str:
    return missing if value is None else f"{value:,.0f} µs"


def within(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def figures_table(title: str, caption: str, rows: Iterable[Row]) -> Table:
    """figure, target, measured and pass/fail, one row each; the text is literal."""
    table = Table(title=escape(title), caption=escape(caption))
    table.add_column("figure", justify="left")
    table.add_column("target", justify="right")
    table.add_column("measured", justify="right")
    table.add_column("", justify="center")
    for row in rows:
        mark = "" if row.ok is None else ("[green]pass[/]" if row.ok else "[red]fail[/]")
        table.add_row(escape(row.figure), escape(row.target), escape(row.measured), mark)
    return table


def publish(
    result: dict[str, Any],
    table: RenderableType,
    notes: Iterable[str],
    output: Path,
    console: Console,
    *,
    width: int = 130,
) -> None:
    """Print the table and the notes (at `width` when not on a terminal), and write the
    result as JSON; `notes` are literal text."""
    out = Console()
    if not out.is_terminal:
        out = Console(width=width)
    out.print(table)
    for line in notes:
        out.print(f"- {line}", highlight=False, markup=False, soft_wrap=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1, default=str) + "\n")
    console.print(f"took {result['duration_s']} s; wrote {output}")
