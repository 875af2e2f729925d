"""Command line: `loudsync-tui [host|join|discover]`, with or without a screen."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loudsync_tui import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loudsync-tui",
        description="Gather the people on one LAN into a live session.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    del args
    from loudsync_tui.tui.app import LoudsyncApp

    LoudsyncApp().run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
