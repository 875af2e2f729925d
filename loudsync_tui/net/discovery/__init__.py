"""LAN discovery over mDNS/DNS-SD: advertise a hosted session, browse the LAN's sessions.

- `records`: the service type and the TXT codec, pure (no zeroconf, no sockets);
- `interfaces`: which interfaces mDNS uses, and opening zeroconf on them;
- `advertiser`: `SessionAdvertiser` publishes one hosted session;
- `browser`: `SessionBrowser` reports the LAN's sessions to a `DiscoveryListener`, and
  `discover_once` lists them for a while;
- `reachability`: the TCP check of each listed session that the browser runs.

The names below are the public surface; the modules' other names are theirs. They are
imported on first use, so a caller that needs only `ProbeOptions` (the settings) does not
pay for zeroconf.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loudsync_tui.net.discovery.advertiser import UPDATE_INTERVAL, SessionAdvertiser
    from loudsync_tui.net.discovery.browser import (
        DiscoveryListener,
        SessionBrowser,
        discover_once,
        session_from_service,
    )
    from loudsync_tui.net.discovery.interfaces import DiscoveryUnavailable, machine_addresses
    from loudsync_tui.net.discovery.reachability import (
        DEFAULT_PROBE,
        ProbeOptions,
        ReachabilityMonitor,
        answers,
    )
    from loudsync_tui.net.discovery.records import (
        SERVICE_TYPE,
        Security,
        instance_name,
        instance_of,
        server_name,
        session_from_record,
        txt_record,
    )

_HOMES = {
    "UPDATE_INTERVAL": "advertiser",
    "SessionAdvertiser": "advertiser",
    "DiscoveryListener": "browser",
    "SessionBrowser": "browser",
    "discover_once": "browser",
    "session_from_service": "browser",
    "DiscoveryUnavailable": "interfaces",
    "machine_addresses": "interfaces",
    "DEFAULT_PROBE": "reachability",
    "ProbeOptions": "reachability",
    "ReachabilityMonitor": "reachability",
    "answers": "reachability",
    "SERVICE_TYPE": "records",
    "Security": "records",
    "instance_name": "records",
    "instance_of": "records",
    "server_name": "records",
    "session_from_record": "records",
    "txt_record": "records",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_PROBE",
    "SERVICE_TYPE",
    "UPDATE_INTERVAL",
    "DiscoveryListener",
    "DiscoveryUnavailable",
    "ProbeOptions",
    "ReachabilityMonitor",
    "Security",
    "SessionAdvertiser",
    "SessionBrowser",
    "answers",
    "discover_once",
    "instance_name",
    "instance_of",
    "machine_addresses",
    "server_name",
    "session_from_record",
    "session_from_service",
    "txt_record",
]
