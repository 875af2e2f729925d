"""LAN discovery with real zeroconf: advertise, browse, update, rename, goodbye, CLI, dig, netns.

Everything runs on 127.0.0.1 (`interfaces=["127.0.0.1"]`), except the namespace test,
which builds its own two network namespaces joined by a veth pair. Multicast sent on the
loopback interface never leaves this machine. Waits are on store changes or process
output with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from zeroconf import DNSQuestionType
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from loudsync_tui.config import HostConfig
from loudsync_tui.net.discovery import (
    SERVICE_TYPE,
    DiscoveryUnavailable,
    Security,
    SessionAdvertiser,
    SessionBrowser,
)
from loudsync_tui.net.host_service import HostService
from loudsync_tui.protocol import PROTOCOL_VERSION, SessionInfo
from loudsync_tui.store import AppStore, DiscoveredSession
from loudsync_tui.tui.services import store_listener

LOOPBACK = ["127.0.0.1"]
ROOT = Path(__file__).resolve().parents[2]
Sessions = Mapping[str, DiscoveredSession]

# Real mDNS on 127.0.0.1 is one shared space: these tests run in one worker, in turn.
pytestmark = pytest.mark.xdist_group("mdns")

# A host process for the tests that need one running while they block: it advertises
# the sessions given as JSON, prints "ready [NAMES]" and says goodbye when stdin closes.
# On request a raw registration with a garbled TXT rides along, which browsers must skip.
ADVERTISER_SCRIPT = """
import asyncio, json, sys
from zeroconf.asyncio import AsyncServiceInfo
from loudsync_tui.net.discovery import SERVICE_TYPE, SessionAdvertiser
from loudsync_tui.protocol import SessionInfo

async def main():
    spec = json.loads(sys.argv[1])
    interfaces = spec["interfaces"]
    advertisers = [SessionAdvertiser(interfaces) for _ in spec["sessions"]]
    names = await asyncio.gather(*(
        adv.start(SessionInfo(**s["info"]), s["port"])
        for adv, s in zip(advertisers, spec["sessions"])
    ))
    if spec.get("garbled"):
        # On the first advertiser's own zeroconf, so the process stays one mDNS stack
        # and dig's unicast query to 127.0.0.1:5353 cannot land on another one.
        info = AsyncServiceInfo(
            SERVICE_TYPE, "Garbled." + SERVICE_TYPE, port=9,
            properties={"id": "g1", "name": "Garbled", "members": "many", "v": "one"},
            server="garbled.local.", parsed_addresses=interfaces,
        )
        await (await advertisers[0]._aiozc.async_register_service(info))
    print("ready", json.dumps(names), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.gather(*(adv.stop() for adv in advertisers))

asyncio.run(main())
"""


def session_info(
    session_id: str,
    name: str,
    *,
    members: int = 1,
    max_members: int = 10,
    version: int = PROTOCOL_VERSION,
) -> SessionInfo:
    return SessionInfo(
        id=session_id,
        name=name,
        host_id=f"host-{session_id}",
        host_name="Grace",
        max_members=max_members,
        member_count=members,
        protocol_version=version,
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


class AdvertiserProcess:
    """The ADVERTISER_SCRIPT in a child process (optionally inside a network namespace)."""

    def __init__(self, spec: Mapping[str, object], prefix: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-c", ADVERTISER_SCRIPT, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=_env(),
        )
        self.names: list[str] = []

    def wait_ready(self, timeout: float = 10.0) -> list[str]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("ready "):
            self.close()
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"advertiser did not start: {line!r} {stderr}")
        self.names = json.loads(line.removeprefix("ready "))
        return self.names

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


async def wait_for(
    store: AppStore, predicate: Callable[[Sessions], bool], timeout: float, what: str
) -> float:
    """Seconds until the store's discovered sessions satisfy `predicate`; fails after `timeout`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    if predicate(store.get().discovery.sessions):
        return 0.0
    reached = asyncio.Event()

    def check(sessions: Sessions, _old: Sessions) -> None:
        if predicate(sessions):
            reached.set()

    unsubscribe = store.subscribe(check, selector=lambda s: s.discovery.sessions)
    try:
        async with asyncio.timeout(timeout):
            await reached.wait()
    except TimeoutError:
        raise AssertionError(
            f"{what} not within {timeout} s; sessions: {dict(store.get().discovery.sessions)}"
        ) from None
    finally:
        unsubscribe()
    return loop.time() - started


def run_cli(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loudsync_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=_env(),
    )


OPEN = session_info("open-1", "Discovery test room", members=2, max_members=10)
OPEN_PORT = 47001


@pytest.fixture(scope="class")
def running_host() -> Iterator[str]:
    """A host process advertising OPEN (and a garbled record) on 127.0.0.1; its instance name."""
    spec = {
        "interfaces": LOOPBACK,
        "garbled": True,
        "sessions": [{"info": _fields(OPEN), "port": OPEN_PORT}],
    }
    host = AdvertiserProcess(spec)
    try:
        (name,) = host.wait_ready()
        yield name
    finally:
        host.close()


def _fields(info: SessionInfo) -> dict[str, object]:
    return {field: getattr(info, field) for field in info.__struct_fields__}


class TestAgainstARunningHost:
    async def test_browser_sees_running_session_within_2s_and_again_after_rescan(
        self, running_host: str
    ) -> None:
        store = AppStore()
        browser = SessionBrowser(store_listener(store), LOOPBACK)
        await browser.start()
        try:
            latency = await wait_for(store, lambda s: running_host in s, 2.0, "session seen")
            print(f"\ndiscovery latency (browser start -> seen): {latency:.3f} s")
            discovery = store.get().discovery
            assert discovery.browsing
            assert discovery.error is None
            assert discovery.sessions[running_host] == DiscoveredSession(
                key=running_host,
                session_id="open-1",
                name="Discovery test room",
                host_name="Grace",
                addresses=("127.0.0.1",),
                port=OPEN_PORT,
                members=2,
                max_members=10,
                protocol_version=PROTOCOL_VERSION,
                joinable=True,
                why_not=None,
            )
            # Its garbled neighbour answered in the same packets; it must be skipped.
            assert all(s.session_id != "g1" for s in discovery.sessions.values())
            assert "Garbled" not in discovery.sessions

            await browser.rescan()
            assert running_host not in store.get().discovery.sessions  # cleared at once
            await wait_for(store, lambda s: running_host in s, 2.0, "seen again after rescan")
        finally:
            await browser.stop()

    def test_discover_json_prints_one_parseable_object_per_session(self, running_host: str) -> None:
        result = run_cli("discover", "--json", "--timeout", "1.5", "--interface", "127.0.0.1")
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        by_id = {r["sessionId"]: r for r in records}
        assert "g1" not in by_id
        assert by_id["open-1"] == {
            "name": "Discovery test room",
            "host": "Grace",
            "sessionId": "open-1",
            "addresses": ["127.0.0.1"],
            "port": OPEN_PORT,
            "members": 2,
            "maxMembers": 10,
            "protocolVersion": PROTOCOL_VERSION,
            "joinable": True,
            "whyNot": None,
            "address": f"127.0.0.1:{OPEN_PORT}",
            "tls": False,
            "fingerprint": None,
            "pin": False,
            "reachable": False,  # advertised, but nothing listens on OPEN_PORT
        }

    def test_discover_table_lists_sessions_with_join_address(self, running_host: str) -> None:
        result = run_cli("discover", "--timeout", "1.5", "--interface", "127.0.0.1")
        assert result.returncode == 0, result.stderr
        row = next(line for line in result.stdout.splitlines() if f":{OPEN_PORT}" in line)
        assert "Discovery test room" in row
        assert "Grace" in row
        assert "2/10" in row
        assert f"127.0.0.1:{OPEN_PORT}" in row
        assert "not answering" in row  # advertised, but nothing listens on OPEN_PORT

    @pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) is not installed")
    def test_dig_finds_the_session_ptr_srv_and_txt(self, running_host: str) -> None:
        wire_name = running_host.replace(" ", "\\032")
        ptr = _dig("_loudsync._tcp.local", "PTR", expect=wire_name)
        assert re.search(
            rf"_loudsync\._tcp\.local\.\s+\d+\s+IN\s+PTR\s+{re.escape(wire_name)}\.", ptr
        ), ptr
        instance = f"{running_host}._loudsync._tcp.local"
        srv = _dig(instance, "SRV", expect="SRV")
        assert re.search(rf"\sSRV\s+\d+\s+\d+\s+{OPEN_PORT}\s", srv), srv
        txt = _dig(instance, "TXT", expect="TXT")
        for item in (
            "id=open-1",
            "name=Discovery test room",
            "host=Grace",
            "members=2",
            "max=10",
            f"v={PROTOCOL_VERSION}",
        ):
            assert f'"{item}"' in txt, txt

    async def test_same_name_is_renamed_and_stopping_it_drops_only_it(
        self, running_host: str
    ) -> None:
        store = AppStore()
        browser = SessionBrowser(store_listener(store), LOOPBACK)
        await browser.start()
        twin = SessionAdvertiser(LOOPBACK)
        try:
            name = await twin.start(session_info("twin-1", "Discovery test room"), 47010)
            assert name != running_host
            assert name.startswith("Discovery test room")
            await wait_for(store, lambda s: {running_host, name} <= s.keys(), 2.0, "both seen")
            sessions = store.get().discovery.sessions
            assert sessions[name].name == sessions[running_host].name == "Discovery test room"
            assert sessions[name].session_id == "twin-1"
            assert sessions[running_host].session_id == "open-1"

            loop = asyncio.get_running_loop()
            stopped_at = loop.time()
            await twin.stop()
            await wait_for(store, lambda s: name not in s, 3.0, "stopped twin lost")
            print(f"\nlost after stop() began: {loop.time() - stopped_at:.3f} s")
            assert running_host in store.get().discovery.sessions
        finally:
            await twin.stop()
            await browser.stop()


def _dig(name: str, rrtype: str, expect: str, deadline: float = 8.0) -> str:
    """Ask the responder on 127.0.0.1:5353 by legacy unicast. Every mDNS stack on this
    machine shares that port and the kernel hands each query to one of them, so another
    test run's stack may get it; ask again (from a new port) until ours answers."""
    answer = ""
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        answer = subprocess.run(
            ["dig", "-p", "5353", "@127.0.0.1", name, rrtype, "+time=1", "+tries=1"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout
        if "ANSWER SECTION" in answer and expect in answer:
            return answer
    raise AssertionError(f"dig {name} {rrtype}: no answer with {expect!r}: {answer}")


async def test_member_count_updates_are_coalesced_and_seen() -> None:
    store = AppStore()
    browser = SessionBrowser(store_listener(store), LOOPBACK)
    await browser.start()
    advertiser = SessionAdvertiser(LOOPBACK)
    seen: list[tuple[float, int]] = []
    loop = asyncio.get_running_loop()
    try:
        key = await advertiser.start(session_info("count-1", "Counting room"), 47020)

        def record(sessions: Sessions, _old: Sessions) -> None:
            if key in sessions and (not seen or seen[-1][1] != sessions[key].members):
                seen.append((loop.time(), sessions[key].members))

        store.subscribe(record, selector=lambda s: s.discovery.sessions)
        await wait_for(store, lambda s: key in s, 2.0, "advertised session seen")
        record(store.get().discovery.sessions, {})

        # A burst inside the 1 s window after start: only the last value goes out.
        await advertiser.update(2)
        await advertiser.update(3)
        await wait_for(store, lambda s: s[key].members == 3, 3.0, "members=3 seen")
        # Back to a value browsers have seen (and cached) before.
        await advertiser.update(1)
        await wait_for(store, lambda s: s[key].members == 1, 3.0, "members=1 seen again")

        assert [members for _, members in seen] == [1, 3, 1]
        gap = seen[2][0] - seen[1][0]
        assert gap > 0.8, f"two updates {gap:.3f} s apart; the window is 1 s"
    finally:
        await advertiser.stop()
        await browser.stop()


def test_discover_with_nothing_running_says_so_and_exits_0() -> None:
    """In a namespace of its own where possible, so no other host on this machine shows up."""
    args = ("discover", "--timeout", "1", "--interface", "127.0.0.1")
    if _netns_possible() is None:
        ns = f"lsd{uuid.uuid4().hex[:8]}"
        _ip("netns", "add", ns)
        try:
            _ip("-n", ns, "link", "set", "lo", "up")
            result = _cli_in(ns, *args)
        finally:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    else:
        result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "No LOUDSYNC sessions found" in result.stderr


@pytest.mark.parametrize(
    ("interface", "message"),
    [
        ("203.0.113.9", "203.0.113.9 is not an address of this machine"),
        ("not-an-address", "'not-an-address' is not an IP address"),
    ],
)
def test_discover_with_a_bad_interface_fails_clearly(interface: str, message: str) -> None:
    result = run_cli("discover", "--timeout", "1", "--interface", interface)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


async def test_bad_interface_reaches_the_store_not_the_caller() -> None:
    store = AppStore()
    browser = SessionBrowser(store_listener(store), ["203.0.113.9"])
    await browser.start()  # must not raise
    await browser.stop()
    error = store.get().discovery.error
    assert error is not None
    assert "203.0.113.9 is not an address of this machine" in error
    assert not store.get().discovery.browsing
    with pytest.raises(DiscoveryUnavailable, match="not an address of this machine"):
        await SessionAdvertiser(["203.0.113.9"]).start(session_info("x", "X"), 1)


# Network namespaces: only the interfaces the test makes, so nothing leaves them ---------


def _netns_possible() -> str | None:
    """Why the namespace tests cannot run here, or None if they can."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    probe = f"lsprobe{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _cli_in(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["ip", "netns", "exec", ns, sys.executable, "-m", "loudsync_tui", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=20, cwd=ROOT, env=_env())


@pytest.fixture
def namespaces() -> Iterator[Callable[[], str]]:
    """Makes empty network namespaces (loopback down, no addresses); deletes them after."""
    why_not = _netns_possible()
    if why_not is not None:
        pytest.skip(why_not)
    made: list[str] = []

    def make() -> str:
        ns = f"lsd{uuid.uuid4().hex[:8]}"
        _ip("netns", "add", ns)
        made.append(ns)
        return ns

    try:
        yield make
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_discovery_across_two_network_namespaces(namespaces: Callable[[], str]) -> None:
    """Host in A (10.213.0.1), guest in B (10.213.0.2), one veth link between them. Both
    use the default interfaces, which inside a namespace are just its veth (and lo)."""
    ns_a, ns_b = namespaces(), namespaces()
    _ip("-n", ns_a, "link", "add", "veth-a", "type", "veth", "peer", "veth-b", "netns", ns_b)
    for ns, dev, address in ((ns_a, "veth-a", "10.213.0.1/24"), (ns_b, "veth-b", "10.213.0.2/24")):
        _ip("-n", ns, "addr", "add", address, "dev", dev)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", dev, "up")
    spec = {
        "interfaces": [],
        "sessions": [{"info": _fields(session_info("ns-1", "Across the wire")), "port": 47030}],
    }
    host = AdvertiserProcess(spec, prefix=("ip", "netns", "exec", ns_a))
    try:
        (instance,) = host.wait_ready()
        result = _cli_in(ns_b, "discover", "--json", "--timeout", "1.5")
    finally:
        host.close()
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["sessionId"] == "ns-1"
    assert record["name"] == instance == "Across the wire"
    assert record["address"] == "10.213.0.1:47030"
    assert record["addresses"] == ["10.213.0.1"]  # not its loopback


def test_discover_without_any_usable_interface_fails_clearly(
    namespaces: Callable[[], str],
) -> None:
    result = _cli_in(namespaces(), "discover", "--timeout", "1")
    assert result.returncode == 1
    assert "discovery is unavailable: no network interface has an IP address" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


async def txt_on_the_wire(instance: str) -> dict[str, str | None]:
    """The TXT record of `instance` as any resolver on the LAN gets it."""
    aiozc = AsyncZeroconf(interfaces=LOOPBACK)
    try:
        info = AsyncServiceInfo(SERVICE_TYPE, f"{instance}.{SERVICE_TYPE}")
        found = await info.async_request(aiozc.zeroconf, 3000, question_type=DNSQuestionType.QM)
        assert found, f"{instance} did not resolve"
        return info.decoded_properties
    finally:
        await aiozc.async_close()


async def test_txt_says_how_the_session_is_protected_and_never_the_pin() -> None:
    store = AppStore()
    browser = SessionBrowser(store_listener(store), LOOPBACK)
    await browser.start()
    advertiser = SessionAdvertiser(LOOPBACK)
    fingerprint = "0123456789abcdef" * 4
    try:
        key = await advertiser.start(
            session_info("secure-1", "Locked room"),
            47040,
            security=Security(fingerprint=fingerprint, pin_required=True),
        )
        await wait_for(store, lambda s: key in s, 3.0, "protected session seen")
        seen = store.get().discovery.sessions[key]
        assert (seen.encrypted, seen.fingerprint, seen.pin_required) == (True, fingerprint, True)
        txt = await txt_on_the_wire(key)
        assert txt["pin"] == "1"
        assert txt["fp"] == fingerprint
        assert "4821" not in json.dumps(txt)  # no PIN value in any field

        await advertiser.update(1, Security(fingerprint=fingerprint, pin_required=False))
        await wait_for(store, lambda s: not s[key].pin_required, 3.0, "PIN flag cleared")
    finally:
        await advertiser.stop()
        await browser.stop()


async def test_hosting_with_a_pin_advertises_the_flag_not_the_pin(tmp_path: Path) -> None:
    store = AppStore()
    browser = SessionBrowser(store_listener(store), LOOPBACK)
    await browser.start()
    host = HostService(
        HostConfig(
            "PIN room",
            "Grace",
            "dev-pin-host",
            port=0,
            bind="127.0.0.1",
            interfaces=tuple(LOOPBACK),
            tls=True,
            key_dir=str(tmp_path),
            pin="4821",
        ),
        AppStore(),
    )
    try:
        await host.start()
        await wait_for(
            store,
            lambda s: any(v.session_id == host.session_id for v in s.values()),
            3.0,
            "hosted session seen",
        )
        seen = next(
            v for v in store.get().discovery.sessions.values() if v.session_id == host.session_id
        )
        assert seen.pin_required
        assert seen.fingerprint == host.fingerprint
        assert "4821" not in repr(seen)
    finally:
        await host.aclose()
        await browser.stop()
