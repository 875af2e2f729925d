"""When a figure has moved enough to be worth telling: one rule for the host's batched
MEMBER_UPDATED and for what the headless guest prints (latency), and one for what a
guest reports of its clock and the host's table shows (clock uncertainty)."""

from __future__ import annotations

LATENCY_MIN_CHANGE_MS = 5.0
LATENCY_MIN_CHANGE_RATIO = 0.2


def latency_changed(old: float | None, new: float | None) -> bool:
    """Whether a latency moved enough to tell everyone: by more than both 5 ms and 20%."""
    if old is None or new is None:
        return old != new
    delta = abs(new - old)
    return delta > LATENCY_MIN_CHANGE_MS and delta > LATENCY_MIN_CHANGE_RATIO * old


def uncertainty_changed(old: float | None, new: float) -> bool:
    """A clock uncertainty that moved by a quarter and 5 µs: the host's table stays calm
    and a guest repeats the figure in its PINGs only when it moved."""
    return old is None or (abs(new - old) > 5 and abs(new - old) > 0.25 * old)
