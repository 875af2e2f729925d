"""LOUDSYNC TUI: gather the people on one LAN into a live session from the terminal."""

__version__ = "0.1.0"
