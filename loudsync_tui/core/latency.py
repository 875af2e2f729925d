"""When a latency figure has moved enough to be worth telling: one rule for the host's
batched MEMBER_UPDATED and for what the headless guest prints."""

from __future__ import annotations

LATENCY_MIN_CHANGE_MS = 5.0
LATENCY_MIN_CHANGE_RATIO = 0.2


def latency_changed(old: float | None, new: float | None) -> bool:
    """Whether a latency moved enough to tell everyone: by more than both 5 ms and 20%."""
    if old is None or new is None:
        return old != new
    delta = abs(new - old)
    return delta > LATENCY_MIN_CHANGE_MS and delta > LATENCY_MIN_CHANGE_RATIO * old
