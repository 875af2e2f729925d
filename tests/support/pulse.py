"""The PulseAudio rig (benchmarks/pulse_rig.py) as a pytest fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from benchmarks.pulse_rig import PulseRig, pulse_unavailable_reason

__all__ = ["PulseRig", "pulse_rig", "pulse_unavailable_reason"]


@pytest.fixture
def pulse_rig() -> Iterator[PulseRig]:
    """A started rig; skipped where PulseAudio is not installed, but failing in CI (`CI` set),
    which must not pass by skipping."""
    reason = pulse_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the PulseAudio rig: {reason}")
        pytest.skip(reason)
    with PulseRig() as rig:
        yield rig
