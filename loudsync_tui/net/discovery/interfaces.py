"""Which network interfaces mDNS uses, and opening zeroconf on them.

Explicit addresses are checked against this machine's own; without any, every interface
with an address is used (IPv6 where the machine has it). Anything that keeps mDNS from
running here surfaces as `DiscoveryUnavailable`, with a text a person can act on.

Several mDNS stacks on one machine (a host and a guest on the same laptop, or the tests
on 127.0.0.1) share UDP port 5353 on the same address, and the kernel hands a unicast
reply to just one of them. Questions are therefore asked as QM (answered by multicast,
which every stack hears) rather than QU, at the price of a little more multicast.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Sequence
from typing import Final

import ifaddr
from zeroconf import DNSQuestionType, InterfaceChoice, IPVersion
from zeroconf import Error as ZeroconfError
from zeroconf.asyncio import AsyncZeroconf

QUESTION_TYPE: Final = DNSQuestionType.QM
"""How the advertiser and the browser ask: by multicast answer (see above)."""


class DiscoveryUnavailable(Exception):
    """mDNS cannot run here (no usable interface, port 5353 not bindable); join by address."""


def machine_addresses() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every IP address of this machine's interfaces."""
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            # ifaddr gives IPv6 as (address, flowinfo, scope_id)
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            with contextlib.suppress(ValueError):
                found.append(ipaddress.ip_address(text))
    return found


def interface_plan(
    interfaces: Sequence[str],
) -> tuple[list[str] | InterfaceChoice, list[IPVersion | None], tuple[str, ...]]:
    """What to hand zeroconf (interfaces, IP versions to try in order) and the A/AAAA addresses.

    Explicit addresses are checked against this machine's own, because zeroconf skips an
    address it cannot bind with only a log line and would then run deaf and mute.
    """
    machine = machine_addresses()
    if interfaces:
        chosen: list[str] = []
        for text in interfaces:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise DiscoveryUnavailable(
                    f"interface address {text!r} is not an IP address"
                ) from None
            if address not in machine:
                have = ", ".join(sorted({str(a) for a in machine if a.version == 4}))
                raise DiscoveryUnavailable(
                    f"{address} is not an address of this machine (it has: {have or 'none'})"
                )
            chosen.append(str(address))
        # None: zeroconf picks V4Only, V6Only or All from the addresses given.
        return chosen, [None], tuple(chosen)

    if not machine:
        raise DiscoveryUnavailable("no network interface has an IP address; is the network up?")
    v4 = [a for a in machine if a.version == 4]
    v6 = [a for a in machine if a.version == 6 and not a.is_link_local]
    wanted_v4 = [a for a in v4 if not a.is_loopback] or v4
    addresses = [str(a) for a in wanted_v4]
    if socket.has_ipv6 and any(a.version == 6 for a in machine):
        addresses += [str(a) for a in v6 if not a.is_loopback]
        # IPv6 where the machine has it; fall back to IPv4 if the stack refuses it.
        return InterfaceChoice.All, [IPVersion.All, IPVersion.V4Only], tuple(addresses)
    return InterfaceChoice.All, [IPVersion.V4Only], tuple(addresses)


async def open_zeroconf(interfaces: Sequence[str]) -> tuple[AsyncZeroconf, tuple[str, ...]]:
    """A started AsyncZeroconf on the chosen interfaces, and the addresses to advertise."""
    choice, versions, addresses = interface_plan(interfaces)
    failure: Exception | None = None
    for version in versions:
        try:
            aiozc = AsyncZeroconf(interfaces=choice, ip_version=version)
        except (OSError, RuntimeError, ValueError, ZeroconfError) as exc:
            failure = exc
            continue
        try:
            await aiozc.zeroconf.async_wait_for_start()
            if aiozc.zeroconf.engine.senders:
                return aiozc, addresses
            failure = None
        except (OSError, ZeroconfError) as exc:
            failure = exc
        await aiozc.async_close()
    if failure is None:
        raise DiscoveryUnavailable("no network interface accepts multicast; join by address")
    if isinstance(failure, OSError):
        reason = failure.strerror or str(failure)
        raise DiscoveryUnavailable(
            f"cannot use mDNS (UDP port 5353): {reason}; join by address instead"
        ) from failure
    raise DiscoveryUnavailable(f"cannot use mDNS: {failure}; join by address instead") from failure
