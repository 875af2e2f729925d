"""The JACK rig (benchmarks/jack_rig.py) as a pytest fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from benchmarks.jack_rig import JackRig, jack_unavailable_reason

__all__ = ["JackRig", "jack_rig", "jack_unavailable_reason"]


@pytest.fixture
def jack_rig() -> Iterator[JackRig]:
    """A started rig; skipped where JACK is not installed, but failing in CI (`CI` set),
    which must not pass by skipping."""
    reason = jack_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the JACK rig: {reason}")
        pytest.skip(reason)
    with JackRig() as rig:
        yield rig
