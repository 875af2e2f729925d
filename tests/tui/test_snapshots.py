"""SVG snapshots of every screen at 80x24 and 120x40 (pytest-textual-snapshot).

After a deliberate UI change: `pytest tests/tui/test_snapshots.py --snapshot-update`,
then look at the new SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loudsync_tui.tui.demo import demo_app, scenes

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("scene", list(scenes()))
def test_screen(scene: str, size: tuple[int, int], snap_compare: Callable[..., bool]) -> None:
    start, prepare = scenes()[scene]
    assert snap_compare(demo_app(start), terminal_size=size, run_before=prepare)
