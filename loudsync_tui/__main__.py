"""`python -m loudsync_tui` runs the same entry point as the `loudsync-tui` script."""

from loudsync_tui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
