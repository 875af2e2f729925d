"""`loudsync-tui join ADDRESS --headless`: join with no screen, logging to stderr.

Exit status: 0 after leaving or when the host closed the session, 3 when kicked,
2 when the join was refused (a missing or wrong PIN included), 4 when the host's
identity could not be verified (first seen, or changed), 1 when the host could not be
reached or the link was lost and every reconnect attempt failed.
"""

from __future__ import annotations

import argparse
import asyncio

from loudsync_tui.config import GuestConfig, guest_config_from_args
from loudsync_tui.core.latency import latency_changed
from loudsync_tui.headless.console import fail, identity_from, on_stop_signals, print_log, stderr
from loudsync_tui.net.guest_service import GuestService
from loudsync_tui.store import AppStore, ConnectionState, GuestState

EXIT_CODES = {
    "left": 0,
    "closed": 0,
    "kicked": 3,
    "refused": 2,
    "pin": 2,
    "failed": 1,
    "untrusted": 4,
}
TRUST_HINT = (
    "To go on, compare the code (the fingerprint's first four groups) with the one on the "
    "host's screen, then run again with --fingerprint FP (or --trust-new for a host met for "
    "the first time, --replace-pin --fingerprint FP for one whose fingerprint changed)."
)


async def join_headless(config: GuestConfig) -> int:
    store = AppStore()
    stop_printing = print_log(store)
    service = GuestService(config, store)
    failed = asyncio.Event()
    shown_latency: list[float | None] = [None]

    def watch(new: GuestState | None, old: GuestState | None) -> None:
        if new is None:
            return
        if old is None or new.connection is not old.connection:
            if new.connection is ConnectionState.RECONNECTING:
                stderr.log(
                    f"reconnecting, attempt {new.attempt}/{new.max_attempts}", style="yellow"
                )
            if new.connection is ConnectionState.FAILED:
                failed.set()
        if new.latency is not None and latency_changed(shown_latency[0], new.latency):
            shown_latency[0] = new.latency
            stderr.log(f"latency {new.latency:.1f} ms", style="dim")

    store.subscribe(watch, selector=lambda s: s.guest)
    on_stop_signals(service.leave)
    service.start()
    ended = asyncio.create_task(service.wait_ended())
    gave_up = asyncio.create_task(failed.wait())
    await asyncio.wait({ended, gave_up}, return_when=asyncio.FIRST_COMPLETED)
    if gave_up.done() and not ended.done():
        guest = store.get().guest
        why = guest.ended if guest and guest.ended else "could not connect"
        stop_printing()  # what follows is tidying up, not news: "You left" would mislead
        service.leave()
        await service.aclose()
        return fail(why, 1)
    gave_up.cancel()
    end = ended.result()
    await service.aclose()
    if end.code == "untrusted":
        stderr.print(TRUST_HINT)
    return EXIT_CODES[end.code]


def run_join(args: argparse.Namespace) -> int:
    try:
        identity, name = identity_from(args)
    except OSError as exc:
        return fail(f"cannot use the config directory: {exc}")
    config = guest_config_from_args(args, identity.device_id, name, identity.key.private)
    return asyncio.run(join_headless(config))
