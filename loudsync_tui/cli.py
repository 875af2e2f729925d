"""Command line: `loudsync-tui [host|join|discover]`, with a screen or headless.

The parser lives here; each command's runner lives in its own module and is imported
only when that command runs, so `discover --json` never pays for Textual.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from loudsync_tui import __version__
from loudsync_tui.config import DEFAULT_PORT


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {value}")
    return value


def _display_name(text: str) -> str:
    """A name peers will be shown: what the protocol accepts, checked before anyone is
    sent it (a host named with a control character would have every WELCOME refused)."""
    from loudsync_tui.text import UNSAFE

    if not 0 < len(text) <= 64:
        raise argparse.ArgumentTypeError(f"a name has 1-64 characters, got {len(text)}")
    if UNSAFE.search(text):
        raise argparse.ArgumentTypeError("a name cannot contain control or direction characters")
    return text


def _pin(text: str) -> str:
    """A PIN is checked here, so a typo is a usage error, never a wrong guess at the host."""
    from loudsync_tui.security.pin import check_pin_format

    if text and (problem := check_pin_format(text)):
        raise argparse.ArgumentTypeError(f"{problem}, got {text!r}")
    return text


SESSION_ID_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
)


def _session_id(text: str) -> str:
    if not 0 < len(text) <= 128 or not set(text) <= SESSION_ID_CHARACTERS:
        raise argparse.ArgumentTypeError(
            f"a session id is 1-128 letters, digits, '-', '_' or '.', got {text!r}"
        )
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _number(kind: str, low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{kind} must be {low:g} to {high:g}, got {text}")
        return value

    return parse


def _add_output_options(parser: argparse.ArgumentParser, local: bool) -> None:
    """This machine's speakers: the same for a guest and for the host playing along."""
    if local:
        parser.add_argument(
            "--no-local-audio",
            action="store_false",
            dest="audio",
            help="do not play on this machine's speakers (guests still get the music)",
        )
    else:
        parser.add_argument(
            "--no-audio",
            action="store_false",
            dest="audio",
            help="join as a remote: playback state, no sound (and no audio sent here)",
        )
    parser.add_argument(
        "--audio-device", default=None, metavar="NAME", help="output device (name or number)"
    )
    parser.add_argument(
        "--list-audio-devices",
        action="store_true",
        help="list the output devices and exit",
    )
    parser.add_argument(
        "--volume",
        type=_number("a volume", 0.0, 1.5),
        default=None,
        help="0 to 1.5 (default: the last one set on this machine, else 1); remembered",
    )
    parser.add_argument(
        "--latency-offset-ms",
        type=_number("an offset in ms", -2000.0, 2000.0),
        default=None,
        metavar="MS",
        help="how much later than it reports this output really sounds (Bluetooth, HDMI); "
        "plays that much earlier; remembered like --volume",
    )
    parser.add_argument(
        "--output-latency-ms",
        type=_number("a device buffer in ms", 1.0, 2000.0),
        default=None,
        metavar="MS",
        help="the device buffer to ask for (default: the device's own)",
    )
    parser.add_argument(
        "--dac-skew-ppm",
        type=_number("a skew in ppm", -5000.0, 5000.0),
        default=0.0,
        metavar="N",
        help="diagnostic: run the device N ppm off its rate, unknown to the player",
    )


def _add_playback_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--play",
        nargs="+",
        default=[],
        metavar="PATH",
        help="play these files and folders in order (anything FFmpeg reads); the word "
        "system plays this machine's sound, live: whatever its apps play goes to every "
        "member, and its own speakers play the synced copy (PulseAudio or PipeWire, "
        "pulseaudio-utils; ./system for a file of that name)",
    )
    parser.add_argument("--loop", action="store_true", help="start the queue again at its end")
    parser.add_argument(
        "--commands",
        action="store_true",
        help="with --headless: read play, pause, toggle, seek SECONDS, next, prev, quit "
        "from stdin, one a line",
    )
    parser.add_argument(
        "--codec",
        choices=("opus", "pcm", "flac"),
        default="opus",
        help="opus (default, suits Wi-Fi), pcm (least CPU, for wired LANs) or flac "
        "(lossless, about half of pcm's bytes)",
    )
    parser.add_argument(
        "--buffer-ms",
        type=_number("a buffer in ms", 20.0, 10_000.0),
        default=250.0,
        metavar="MS",
        help="how far ahead audio is sent; commands take effect this much later "
        "(default: 250; 100 suits a wired LAN)",
    )


def _add_identity(parser: argparse.ArgumentParser, default: object = None) -> None:
    """Options valid before and after the command; a subcommand's default must not win."""
    parser.add_argument(
        "--name",
        type=_display_name,
        help="your display name (default: your login name)",
        default=default,
    )
    parser.add_argument(
        "--config-dir",
        default=default,
        help="where the device identity is kept (default: the user config dir; "
        "LOUDSYNC_CONFIG_DIR also sets it)",
    )


def _add_no_tls(parser: argparse.ArgumentParser, default: object = True) -> None:
    parser.add_argument(
        "--no-tls",
        action="store_false",
        dest="tls",
        default=default,
        help="host with plain ws:// (unencrypted, for clients that cannot do TLS)",
    )


def _add_normal_priority(parser: argparse.ArgumentParser, default: object = True) -> None:
    parser.add_argument(
        "--normal-priority",
        action="store_false",
        dest="raise_priority",
        default=default,
        help="host at the CPU priority this starts with (by default a host asks for "
        "nice -11, as audio servers do, where the system allows it)",
    )


def _add_interfaces(parser: argparse.ArgumentParser, default: object = None) -> None:
    parser.add_argument(
        "--interface",
        action="append",
        default=[] if default is None else default,
        metavar="ADDR",
        dest="interfaces",
        help="an interface address for mDNS (repeatable; default: every IPv4 interface)",
    )


def _add_probe_timeout(parser: argparse.ArgumentParser, default: object = None) -> None:
    parser.add_argument(
        "--probe-timeout",
        type=_seconds,
        default=default,
        metavar="SECONDS",
        help="how long a listed host has to accept a TCP connection before it is shown "
        "as unreachable (default: 1.5)",
    )


def _add_host_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--session-name", type=_display_name, default=None, help="the hosted session's name"
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="port to listen on (default: 8080)"
    )
    parser.add_argument(
        "--bind", default="0.0.0.0", metavar="ADDR", help="address to listen on (default: all)"
    )
    parser.add_argument(
        "--max-members",
        type=_positive_int,
        default=10,
        help="members allowed, the host included (default: 10)",
    )
    parser.add_argument(
        "--heartbeat-interval", type=_seconds, default=5.0, help="seconds (default: 5)"
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=_seconds,
        default=15.0,
        help="seconds of silence before a member is dropped (default: 15)",
    )
    parser.add_argument(
        "--session-id", type=_session_id, default=None, help="fixed session id (default: random)"
    )
    parser.add_argument(
        "--pin",
        nargs="?",
        const="",
        type=_pin,
        default=None,
        help="require a PIN to join; without a value one is generated and shown",
    )
    parser.add_argument(
        "--no-discovery",
        action="store_false",
        dest="discovery",
        help="do not advertise the session on the LAN",
    )
    parser.add_argument(
        "--allow-unproven",
        action="store_true",
        help="also admit guests that cannot prove their device key (older clients); "
        "they are marked unproven",
    )


def _add_join_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pin", type=_pin, default=None, help="the session PIN, if the host asks for one"
    )
    parser.add_argument(
        "--fingerprint",
        default=None,
        metavar="FP",
        help="the host's certificate fingerprint as shown on its screen",
    )
    parser.add_argument(
        "--trust-new",
        action="store_true",
        help="accept and pin a host seen for the first time (headless)",
    )
    parser.add_argument(
        "--replace-pin",
        action="store_true",
        help="accept a host whose fingerprint changed, and pin the new one",
    )
    parser.add_argument(
        "--session-id",
        type=_session_id,
        default=None,
        help="the session id (default: asked of the host)",
    )
    parser.add_argument(
        "--connect-timeout", type=_seconds, default=10.0, help="seconds (default: 10)"
    )
    parser.add_argument(
        "--reconnect-attempts",
        type=int,
        default=3,
        help="attempts after a dropped link (default: 3)",
    )
    parser.add_argument(
        "--reconnect-delay",
        type=_seconds,
        default=2.0,
        help="seconds between attempts (default: 2)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loudsync-tui",
        description="Gather the people on one LAN into a live session. "
        "Without a command, opens the app on the Browse screen.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_identity(parser)
    _add_interfaces(parser)
    _add_no_tls(parser)
    _add_normal_priority(parser)
    parser.add_argument(
        "--probe-interval",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="how often Browse checks that each listed host still answers (default: 3)",
    )
    _add_probe_timeout(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    host = commands.add_parser("host", help="host a session")
    host.add_argument("--headless", action="store_true", help="no screen: log to stderr")
    host.add_argument(
        "--json", action="store_true", help="with --headless: one JSON object per line on stdout"
    )
    _add_identity(host, argparse.SUPPRESS)
    _add_interfaces(host, argparse.SUPPRESS)
    _add_no_tls(host, argparse.SUPPRESS)
    _add_normal_priority(host, argparse.SUPPRESS)
    _add_host_options(host)
    _add_playback_options(host)
    _add_output_options(host, local=True)

    join = commands.add_parser("join", help="join a session by address")
    join.add_argument("address", metavar="ADDRESS", help="HOST[:PORT] or ws://HOST:PORT")
    join.add_argument("--headless", action="store_true", help="no screen: log to stderr")
    join.add_argument(
        "--json",
        action="store_true",
        help="with --headless: one JSON object per line on stdout (events and the session clock)",
    )
    _add_identity(join, argparse.SUPPRESS)
    _add_interfaces(join, argparse.SUPPRESS)
    _add_join_options(join)
    _add_output_options(join, local=False)

    discover = commands.add_parser("discover", help="list the sessions on the LAN and exit")
    discover.add_argument(
        "--timeout", type=_seconds, default=3.0, help="seconds to listen (default: 3)"
    )
    discover.add_argument("--json", action="store_true", help="one JSON object per line")
    _add_interfaces(discover, argparse.SUPPRESS)
    _add_probe_timeout(discover, argparse.SUPPRESS)
    return parser


PIN_NEEDS_TLS = (
    "--pin needs TLS: a PIN is only ever sent inside TLS, so it cannot protect a --no-tls "
    "session (drop --no-tls, or --pin)"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "host" and args.pin is not None and not args.tls:
        parser.error(PIN_NEEDS_TLS)  # exits 2, as any usage error, before anything starts
    if args.command in ("host", "join") and args.json and not args.headless:
        parser.error("--json goes with --headless")
    if args.command == "host" and args.commands and not args.headless:
        parser.error("--commands goes with --headless (the app has keys for all of them)")
    if args.command in ("host", "join") and args.list_audio_devices:
        from loudsync_tui.headless.audio_devices import run_list_devices

        return run_list_devices()
    if args.command == "discover":
        from loudsync_tui.headless.discover import run_discover

        return run_discover(args)
    if args.command in ("host", "join") and args.headless:
        if args.command == "host":
            from loudsync_tui.headless.host import run_host

            return run_host(args)
        from loudsync_tui.headless.join import run_join

        return run_join(args)
    from loudsync_tui.tui.app import run_app

    return run_app(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
