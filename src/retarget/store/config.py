"""Configuration (advertisers, audiences, campaigns, publishers, API keys) in Redis.

Each family is one hash of id -> JSON under the ``{cfg}`` hash tag. Every change is one
MULTI/EXEC that also bumps ``{cfg}:version``, which is how every worker notices it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from redis.exceptions import WatchError

from retarget.errors import Conflict
from retarget.store import keys
from retarget.store.client import RedisClient


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """The raw stored configuration: family -> id -> JSON bytes."""

    version: int
    families: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)

    def of(self, family: str) -> Iterable[bytes]:
        return self.families.get(family, {}).values()


_CONFLICT = "the configuration changed while this request was made; retry it"


class ConfigStore:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def version(self) -> int:
        return int(await self._redis.get(keys.CONFIG_VERSION) or 0)

    async def load(self) -> ConfigSnapshot:
        """Read the whole configuration, consistently, in one round trip."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.CONFIG_VERSION)
            for family in keys.CONFIG_FAMILIES:
                pipe.hgetall(keys.config_family(family))
            version, *hashes = await pipe.execute()
        return ConfigSnapshot(
            version=int(version or 0),
            families={
                family: {k.decode(): v for k, v in stored.items()}
                for family, stored in zip(keys.CONFIG_FAMILIES, hashes, strict=True)
            },
        )

    async def write(
        self,
        put: Mapping[str, Mapping[str, str]] | None = None,
        delete: Mapping[str, Iterable[str]] | None = None,
        based_on: int | None = None,
    ) -> None:
        """Apply puts (family -> id -> JSON) and deletes (family -> ids) atomically.

        ``based_on``: the configuration version the change was computed from; if another
        change landed since, nothing is written and Conflict is raised (the client retries),
        so two concurrent edits cannot silently undo each other."""
        async with self._redis.pipeline(transaction=True) as pipe:
            if based_on is not None:
                await pipe.watch(keys.CONFIG_VERSION)
                if int(await pipe.get(keys.CONFIG_VERSION) or 0) != based_on:
                    raise Conflict(_CONFLICT, field="version")
                pipe.multi()
            for family, items in (put or {}).items():
                if items:
                    pipe.hset(keys.config_family(family), mapping=dict(items))
            for family, ids in (delete or {}).items():
                ids = list(ids)
                if ids:
                    pipe.hdel(keys.config_family(family), *ids)
            pipe.incr(keys.CONFIG_VERSION)
            try:
                await pipe.execute()
            except WatchError:
                raise Conflict(_CONFLICT, field="version") from None
