"""The token bucket behind the host's rate limit: bursts, sustained rate, refill cap."""

from __future__ import annotations

import pytest

from loudsync_tui.core.ratelimit import TokenBucket


def drain(bucket: TokenBucket, now: float, limit: int = 1000) -> int:
    """How many tokens `bucket` hands out at the instant `now`."""
    taken = 0
    while taken < limit and bucket.take(now):
        taken += 1
    return taken


def test_a_full_bucket_allows_exactly_the_burst() -> None:
    bucket = TokenBucket(rate=20.0, burst=50, now=0.0)
    assert drain(bucket, 0.0) == 50
    assert not bucket.take(0.0)


def test_refills_at_the_sustained_rate() -> None:
    bucket = TokenBucket(rate=20.0, burst=50, now=0.0)
    drain(bucket, 0.0)
    # Half a second at 20/s is 10 tokens, no more.
    assert drain(bucket, 0.5) == 10
    assert not bucket.take(0.5)


def test_less_than_one_token_of_refill_is_refused() -> None:
    bucket = TokenBucket(rate=20.0, burst=50, now=0.0)
    drain(bucket, 0.0)
    assert not bucket.take(0.04)  # 0.8 tokens
    assert bucket.take(0.06)  # 0.8 + 0.4 tokens


def test_refill_is_capped_at_the_burst() -> None:
    bucket = TokenBucket(rate=20.0, burst=50, now=0.0)
    drain(bucket, 0.0)
    assert drain(bucket, 3600.0) == 50


def test_a_sender_just_under_the_sustained_rate_is_never_refused() -> None:
    bucket = TokenBucket(rate=20.0, burst=50, now=0.0)
    # 19.9 messages a second for a minute, on top of a spent burst. (Exactly 20/s
    # would hinge on float rounding of the refill.)
    assert drain(bucket, 0.0) == 50
    for i in range(1, 1195):
        assert bucket.take(i / 19.9), f"message {i} refused"


def test_a_sender_over_the_rate_is_refused_once_the_burst_is_spent() -> None:
    bucket = TokenBucket(rate=20.0, burst=50, now=0.0)
    refused_at = None
    for i in range(200):  # 40 messages a second
        if not bucket.take(i * 0.025):
            refused_at = i
            break
    # A burst of 50 plus 20/s of refill at 40/s runs dry after about 100 messages.
    assert refused_at is not None
    assert 95 <= refused_at <= 101


def test_a_clock_going_back_does_not_mint_tokens() -> None:
    bucket = TokenBucket(rate=20.0, burst=2, now=10.0)
    assert drain(bucket, 10.0) == 2
    assert not bucket.take(5.0)
    # Going back reset the reference time; the next refill counts from there.
    assert not bucket.take(5.01)


@pytest.mark.parametrize(("rate", "burst"), [(1.0, 1), (100.0, 5), (0.5, 3)])
def test_other_rates_and_bursts(rate: float, burst: int) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    assert drain(bucket, 0.0) == burst
    assert drain(bucket, 1.0 / rate) == 1
