"""The Redis circuit breaker: a pure state machine over an injected clock.

Closed, it lets every call through and counts consecutive failures; at the threshold it
opens and the hot paths stop calling Redis for a cool-down (a decision answers no ad at once,
a pixel hit goes to the spool). After the cool-down it is half-open: exactly one trial call
goes through; its success closes the breaker, its failure opens it for another cool-down.
No I/O and no ``await`` here: callers ask ``allow()`` before a call and report its result.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker:
    """Consecutive-failure breaker; ``now`` is a monotonic clock in seconds."""

    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        now: Callable[[], float],
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._now = now
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self.failures = 0  # consecutive, while closed
        self._opened_at = 0.0
        self._trial_started: float | None = None

    def allow(self) -> bool:
        """May a call go to Redis now? In half-open state only the one trial call may."""
        if self.state is BreakerState.CLOSED:
            return True
        now = self._now()
        if self.state is BreakerState.OPEN:
            if now - self._opened_at < self._cooldown:
                return False
            self._move(BreakerState.HALF_OPEN)
        # Half-open: one trial at a time. A trial that never reported (its caller went
        # away) must not wedge the breaker: after a cool-down another trial may go.
        if self._trial_started is not None and now - self._trial_started < self._cooldown:
            return False
        self._trial_started = now
        return True

    def success(self) -> None:
        """A call reached Redis and got its answer."""
        if self.state is BreakerState.HALF_OPEN:
            self._trial_started = None
            self._move(BreakerState.CLOSED)
        self.failures = 0

    def failure(self) -> None:
        """A call could not reach Redis or timed out."""
        if self.state is BreakerState.HALF_OPEN:
            self._trial_started = None
            self._open()
        elif self.state is BreakerState.CLOSED:
            self.failures += 1
            if self.failures >= self._threshold:
                self._open()
        # Open: a late failure of a call started before the breaker opened changes nothing.

    def seconds_until_trial(self) -> float:
        """0 unless open; then how long the cool-down still runs."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._cooldown - self._now())

    def _open(self) -> None:
        self._opened_at = self._now()
        self.failures = 0
        self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)
