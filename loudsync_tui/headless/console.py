"""What the headless modes share: identity from the CLI, log lines on stderr, signals."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.text import Text

from loudsync_tui.identity import Identity, config_dir, default_name, load_identity
from loudsync_tui.store import AppStore, LogEntry, Unsubscribe
from loudsync_tui.text import printable

STYLES = {"info": "", "warning": "yellow", "error": "bold red"}

stderr = Console(stderr=True, highlight=False, log_path=False)
stdout = Console(highlight=False, soft_wrap=True)


def identity_from(args: argparse.Namespace) -> tuple[Identity, str]:
    """(device identity with its key, display name) for this run; OSError says why the
    config dir failed."""
    identity = load_identity(config_dir(getattr(args, "config_dir", None)))
    return identity, getattr(args, "name", None) or default_name()


def log_line(entry: LogEntry) -> Text:
    """`[HH:MM:SS] text`; the text is taken literally, so a guest's name is never markup,
    and escaped by `printable`, so it cannot rewrite the terminal or start a forged line."""
    stamp = time.strftime("[%H:%M:%S] ", time.localtime(entry.at / 1000))
    line = Text(stamp, style="dim")
    line.append(printable(entry.text, indent=" " * len(stamp)), style=STYLES[entry.level])
    return line


def on_new_entries(store: AppStore, show: Callable[[LogEntry], None]) -> Unsubscribe:
    """Call `show` for every event-log entry added from now on, in order."""

    def shown(new: tuple[LogEntry, ...], old: tuple[LogEntry, ...]) -> None:
        last = old[-1] if old else None
        fresh: list[LogEntry] = []
        for entry in reversed(new):
            if entry is last:
                break
            fresh.append(entry)
        for entry in reversed(fresh):
            show(entry)

    return store.subscribe(shown, selector=lambda s: s.log, equals=lambda a, b: a is b)


def print_log(store: AppStore, console: Console = stderr) -> Unsubscribe:
    """Print every new event-log entry as it arrives.

    Plain `print` of one Text, not `Console.log`: the latter lays out a table per line,
    about 0.3 ms each on the host's event loop, which a thousand joins pay in full.
    """
    return on_new_entries(store, lambda entry: console.print(log_line(entry), soft_wrap=True))


def emit(event: str, **fields: object) -> None:
    """One JSON object on its own line on stdout, flushed: `--json` output for scripts.

    Strings are JSON-escaped, so remote text cannot break a line or reach the terminal raw.
    """
    sys.stdout.write(json.dumps({"event": event, **fields}, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def emit_log(store: AppStore) -> Unsubscribe:
    """Every new event-log entry as a `{"event": "log", ...}` line."""
    return on_new_entries(store, lambda e: emit("log", at=e.at, level=e.level, text=e.text))


def on_stop_signals(callback: Callable[[], None]) -> None:
    """Call `callback` on SIGINT or SIGTERM (once each is enough)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, callback)


def fail(message: str, code: int = 1) -> int:
    """Print `message` (which may quote a peer: a close reason) as literal text."""
    stderr.print(Text.assemble(("error:", "bold red"), " ", printable(message)))
    return code


def flush() -> None:
    sys.stdout.flush()
