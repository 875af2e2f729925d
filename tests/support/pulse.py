"""The PulseAudio rig (benchmarks/pulse_rig.py) as a pytest fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.pulse_rig import PulseRig, pulse_unavailable_reason
from tests.support.rigs import started_rig

__all__ = ["PulseRig", "pulse_rig", "pulse_unavailable_reason"]


@pytest.fixture
def pulse_rig() -> Iterator[PulseRig]:
    yield from started_rig("PulseAudio", pulse_unavailable_reason(), PulseRig)
