"""`--list-audio-devices`: the output devices this machine has, or why there are none."""

from __future__ import annotations

from rich.table import Table

from loudsync_tui.audio.output import audio_unavailable_reason, list_output_devices
from loudsync_tui.headless.console import fail, stdout


def run_list_devices() -> int:
    reason = audio_unavailable_reason()
    if reason is not None:
        return fail(reason)
    table = Table("#", "device", "rate", "", box=None)
    for device in list_output_devices():
        table.add_row(
            str(device.index),
            device.name,
            f"{device.default_samplerate:g} Hz",
            "default" if device.is_default else "",
        )
    stdout.print(table)
    return 0
