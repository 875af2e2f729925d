"""The JACK rig (benchmarks/jack_rig.py) as a pytest fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.jack_rig import JackRig, jack_unavailable_reason
from tests.support.rigs import started_rig

__all__ = ["JackRig", "jack_rig", "jack_unavailable_reason"]


@pytest.fixture
def jack_rig() -> Iterator[JackRig]:
    yield from started_rig("JACK", jack_unavailable_reason(), JackRig)
