"""Rate limits: in-process token buckets, one per (limit, key), over an injected clock.

Each limit allows ``per_minute`` requests per key as a sustained rate, in bursts of up to
``per_minute``: a bucket holds that many tokens and refills at ``per_minute / 60`` per
second. (So over any 60 seconds a key gets at most twice ``per_minute``; over an hour, at
most 61 times.) The buckets live in the worker's memory, not in Redis, on purpose:

* a limit costs no Redis round trip, so the pixel and the decision keep exactly one;
* a per-IP counter could not go into the user's Lua script anyway (its keys must share the
  user's hash slot on Redis Cluster);
* a Redis outage cannot turn a limit into an error or a hang.

The price: each worker process counts for itself, so with N workers a node admits up to N
times each limit, and a fleet of nodes needs its limit at the front proxy or load balancer.
Memory is bounded: each limit tracks at most ``max_keys`` keys, forgetting the least recently
seen (a forgotten key starts again with a full bucket).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000
_EPSILON = 1e-9  # float dust: 0.1 + 0.2 tokens is a token


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one request may go on; if not, how many seconds until it could."""

    allowed: bool
    retry_after: int = 0


ALLOWED = Verdict(True)


class TokenBuckets:
    """One limit: ``per_minute`` requests per key (0: unlimited)."""

    __slots__ = ("_buckets", "_capacity", "_now", "max_keys", "name")

    def __init__(
        self, name: str, per_minute: int, now: Callable[[], float], max_keys: int = MAX_KEYS
    ) -> None:
        self.name = name
        self._capacity = float(per_minute)
        self._now = now
        self.max_keys = max_keys
        # key -> (tokens left, when they were counted); ordered by last use.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def unlimited(self) -> bool:
        return self._capacity <= 0

    def take(self, key: str) -> Verdict:
        """Spend one token of ``key``'s bucket, or say how long until one is there."""
        capacity = self._capacity
        if capacity <= 0:
            return ALLOWED
        now = self._now()
        buckets = self._buckets
        found = buckets.get(key)
        if found is None:
            tokens = capacity
            if len(buckets) >= self.max_keys:
                buckets.popitem(last=False)
        else:
            tokens, then = found
            if now > then:  # a wall clock that steps back refills nothing
                # Multiplying before dividing keeps round numbers exact (12 s at 5/min: 1).
                tokens = min(capacity, tokens + (now - then) * capacity / 60.0)
            buckets.move_to_end(key)
        if tokens >= 1.0 - _EPSILON:
            buckets[key] = (tokens - 1.0 if tokens > 1.0 else 0.0, now)
            return ALLOWED
        buckets[key] = (tokens, now)
        wait = (1.0 - tokens) * 60.0 / capacity
        return Verdict(False, max(1, math.ceil(wait - _EPSILON)))

    def __len__(self) -> int:
        return len(self._buckets)
