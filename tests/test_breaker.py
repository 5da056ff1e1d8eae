"""The circuit breaker as a state machine: no Redis, time moved by hand."""

from __future__ import annotations

from retarget.breaker import Breaker, BreakerState


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(ticks: Ticks, moves: list[BreakerState] | None = None) -> Breaker:
    return Breaker(
        failure_threshold=3,
        cooldown_seconds=1.0,
        now=ticks,
        on_change=None if moves is None else moves.append,
    )


def test_a_closed_breaker_lets_calls_through_and_forgets_failures_after_a_success() -> None:
    b = breaker(Ticks())
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()

    assert b.state is BreakerState.CLOSED
    assert b.allow()


def test_the_threshold_of_consecutive_failures_opens_it_and_calls_are_refused() -> None:
    b = breaker(Ticks())
    for _ in range(3):
        b.failure()

    assert b.state is BreakerState.OPEN
    assert not b.allow()


def test_after_the_cooldown_exactly_one_trial_call_goes_through() -> None:
    ticks = Ticks()
    b = breaker(ticks)
    for _ in range(3):
        b.failure()
    ticks.now += 0.99
    assert not b.allow()

    ticks.now += 0.02
    first, second = b.allow(), b.allow()

    assert (first, second) == (True, False)
    assert b.state is BreakerState.HALF_OPEN


def test_a_successful_trial_closes_it() -> None:
    ticks = Ticks()
    moves: list[BreakerState] = []
    b = breaker(ticks, moves)
    for _ in range(3):
        b.failure()
    ticks.now += 1
    assert b.allow()

    b.success()

    assert b.state is BreakerState.CLOSED
    assert b.allow()
    assert b.allow()
    assert moves == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_a_failed_trial_opens_it_for_another_cooldown() -> None:
    ticks = Ticks()
    b = breaker(ticks)
    for _ in range(3):
        b.failure()
    ticks.now += 1
    assert b.allow()

    b.failure()

    assert b.state is BreakerState.OPEN
    assert b.seconds_until_trial() == 1.0
    ticks.now += 0.5
    assert not b.allow()


def test_a_trial_that_never_reports_does_not_keep_it_half_open_forever() -> None:
    ticks = Ticks()
    b = breaker(ticks)
    for _ in range(3):
        b.failure()
    ticks.now += 1
    assert b.allow()  # its caller goes away without a word

    ticks.now += 1

    assert b.allow()


def test_late_failures_of_calls_started_before_it_opened_do_not_extend_the_cooldown() -> None:
    ticks = Ticks()
    b = breaker(ticks)
    for _ in range(3):
        b.failure()
    ticks.now += 0.9
    b.failure()
    b.failure()

    ticks.now += 0.1

    assert b.allow()
