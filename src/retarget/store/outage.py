"""Which Redis failures mean "Redis is unreachable or too slow" (the breaker counts them)."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# A refused or dropped connection, a reply later than the socket timeout, a Redis still
# loading its data (BusyLoadingError is a ConnectionError). Not a script's ResponseError:
# that is a bug, and calling Redis less would not cure it.
OUTAGES: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


def is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, OUTAGES)
