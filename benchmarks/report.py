"""The rows every benchmark table is made of, and how their figures are written."""

from __future__ import annotations

from dataclasses import dataclass


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
