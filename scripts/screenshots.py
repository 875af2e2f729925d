"""Write an SVG of each screen, with demo data, into screenshots/ (rerun after UI changes).

python scripts/screenshots.py [--size 100x30] [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

from loudsync_tui.tui.demo import demo_app, scenes  # noqa: E402


async def shoot(name: str, size: tuple[int, int], out: Path) -> Path:
    start, prepare = scenes()[name]
    app = demo_app(start)
    async with app.run_test(size=size) as pilot:
        await prepare(pilot)  # type: ignore[arg-type]
        await pilot.pause()
        return Path(app.save_screenshot(f"{name}.svg", str(out)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100x30", help="COLSxROWS (default: 100x30)")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args()
    cols, rows = (int(n) for n in args.size.split("x"))
    logging.getLogger().addHandler(logging.NullHandler())  # the log is on screen
    os.environ["TZ"] = "UTC"  # the demo's clocks read the same everywhere
    time.tzset()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in scenes():
        print(asyncio.run(shoot(name, (cols, rows), args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
