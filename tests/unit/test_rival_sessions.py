"""Two records that claim one session: the store keeps both, never one over the other."""

from __future__ import annotations

from dataclasses import replace

from loudsync_tui.store import AppStore, DiscoveredSession, join_refusal, rivals

REAL = DiscoveredSession(
    key="Friday",
    session_id="k3v9q2",
    name="Friday",
    host_name="Grace",
    addresses=("192.168.1.20",),
    port=8080,
    members=1,
    max_members=10,
    protocol_version=1,
    joinable=True,
    encrypted=True,
    fingerprint="ab12" * 16,
    pin_required=True,
)
ROGUE = replace(REAL, addresses=("192.168.1.66",), encrypted=False, fingerprint=None)


def test_a_rogue_under_the_same_mdns_name_gets_its_own_row() -> None:
    store = AppStore()
    store.session_seen(REAL)
    store.session_seen(ROGUE)  # same instance name, another machine
    sessions = store.get().discovery.sessions
    assert sessions["Friday"] == REAL
    assert sessions["Friday @ 192.168.1.66:8080"].addresses == ("192.168.1.66",)
    store.session_seen(replace(REAL, members=2))  # the real host's update stays in its row
    assert store.get().discovery.sessions["Friday"].members == 2
    assert set(rivals(store.get().discovery.sessions)["k3v9q2"]) == {
        replace(REAL, members=2),
        replace(ROGUE, key="Friday @ 192.168.1.66:8080"),
    }
    store.session_lost("Friday")
    assert dict(store.get().discovery.sessions) == {}


def test_rivals_are_records_of_one_session_id_from_several_places() -> None:
    other = replace(ROGUE, key="Friday (2)")
    assert rivals({"Friday": REAL}) == {}
    assert rivals({"Friday": REAL, "Friday (2)": other}) == {"k3v9q2": (REAL, other)}


def test_a_plain_record_asking_for_a_pin_cannot_be_joined() -> None:
    assert join_refusal(REAL) is None
    assert join_refusal(ROGUE) == "PIN without TLS"
    assert join_refusal(replace(ROGUE, pin_required=False)) is None
    assert join_refusal(replace(REAL, joinable=False, why_not="full")) == "full"
