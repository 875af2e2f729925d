"""SVG snapshots of every screen at 80x24 and 120x40 (pytest-textual-snapshot).

After a deliberate UI change: `pytest tests/tui/test_snapshots.py --snapshot-update`,
then look at the new SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loudsync_tui.tui.demo import demo_app, scenes

SIZES = [(80, 24), (120, 40)]
SMALL_ONLY = {"bans", "pin-change", "trust-new", "trust-changed"}
"""Dialogs: 80x24 is where they can overflow; a larger size adds time, not coverage."""
SCREENSHOT_ONLY = {"pin-prompt"}
"""The same one-line prompt as host-name, with other words."""
CASES = [
    (scene, size)
    for scene in scenes()
    if scene not in SCREENSHOT_ONLY
    for size in SIZES
    if size == SIZES[0] or scene not in SMALL_ONLY
] + [("host", (60, 15))]
"""And the Host screen in a small terminal, where its header must still show in full."""


@pytest.mark.parametrize(
    ("scene", "size"), CASES, ids=[f"{scene}-{w}x{h}" for scene, (w, h) in CASES]
)
def test_screen(scene: str, size: tuple[int, int], snap_compare: Callable[..., bool]) -> None:
    start, prepare = scenes()[scene]
    assert snap_compare(demo_app(start), terminal_size=size, run_before=prepare)
