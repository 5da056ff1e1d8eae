"""Token buckets: N per minute per key, refilled by an injected clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from retarget.clock import FrozenClock
from retarget.rate_limits import TokenBuckets

T0 = 1_800_000_000.0


def buckets(per_minute: int, clock: FrozenClock, max_keys: int = 1000) -> TokenBuckets:
    return TokenBuckets("test", per_minute, clock.now, max_keys=max_keys)


def test_a_key_gets_its_per_minute_allowance_at_once_and_then_is_refused() -> None:
    limit = buckets(10, FrozenClock(T0))

    verdicts = [limit.take("1.2.3.4").allowed for _ in range(11)]

    assert verdicts == [True] * 10 + [False]


def test_a_refusal_says_how_many_seconds_until_the_next_token() -> None:
    limit = buckets(6, FrozenClock(T0))  # a token every 10 s
    for _ in range(6):
        limit.take("k")

    assert limit.take("k").retry_after == 10


def test_tokens_come_back_at_the_per_minute_rate() -> None:
    clock = FrozenClock(T0)
    limit = buckets(60, clock)
    for _ in range(60):
        limit.take("k")

    clock.advance(5)

    assert [limit.take("k").allowed for _ in range(6)] == [True] * 5 + [False]


def test_a_bucket_never_holds_more_than_one_minute_of_tokens() -> None:
    clock = FrozenClock(T0)
    limit = buckets(3, clock)
    limit.take("k")

    clock.advance(3600)

    assert [limit.take("k").allowed for _ in range(4)] == [True, True, True, False]


def test_keys_do_not_share_a_bucket() -> None:
    limit = buckets(1, FrozenClock(T0))

    assert limit.take("a").allowed
    assert limit.take("b").allowed
    assert not limit.take("a").allowed


def test_zero_means_no_limit() -> None:
    limit = buckets(0, FrozenClock(T0))

    assert all(limit.take("k").allowed for _ in range(10_000))
    assert len(limit) == 0


def test_a_clock_that_steps_back_refills_nothing_and_breaks_nothing() -> None:
    clock = FrozenClock(T0)
    limit = buckets(2, clock)
    limit.take("k")
    limit.take("k")

    clock.advance(-30)

    verdict = limit.take("k")
    assert not verdict.allowed
    assert verdict.retry_after == 30


def test_memory_is_bounded_by_forgetting_the_least_recently_seen_key() -> None:
    limit = buckets(1, FrozenClock(T0), max_keys=3)
    for key in ("a", "b", "c"):
        limit.take(key)
    limit.take("a")  # a is recent again

    limit.take("d")  # forgets b

    assert len(limit) == 3
    assert limit.take("b").allowed  # a fresh bucket
    assert not limit.take("a").allowed


@given(
    per_minute=st.integers(1, 1000),
    gaps=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=200),
)
def test_over_any_stretch_of_time_a_key_gets_at_most_a_burst_plus_the_refill(
    per_minute: int, gaps: list[float]
) -> None:
    clock = FrozenClock(T0)
    limit = buckets(per_minute, clock)
    allowed = 0
    for gap in gaps:
        clock.advance(gap)
        allowed += limit.take("k").allowed

    elapsed = clock.now() - T0
    assert allowed <= per_minute + elapsed * per_minute / 60 + 1e-6
