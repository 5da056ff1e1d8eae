"""Advertiser and audience definitions in Redis, changed together with a version counter."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from retarget.advertisers import Advertiser
from retarget.audiences import Audience
from retarget.store import keys


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    version: int
    advertisers: list[Advertiser]
    audiences: list[Audience]


class ConfigStore:
    """Every write is one MULTI/EXEC that also bumps ``{cfg}:version``, so workers see it."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def version(self) -> int:
        return int(await self._redis.get(keys.CONFIG_VERSION) or 0)

    async def load(self) -> ConfigSnapshot:
        """Read the whole configuration in one round trip."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(keys.CONFIG_VERSION)
            pipe.hvals(keys.ADVERTISERS)
            pipe.hvals(keys.AUDIENCES)
            version, advertisers, audiences = await pipe.execute()
        return ConfigSnapshot(
            version=int(version or 0),
            advertisers=[Advertiser.model_validate_json(a) for a in advertisers],
            audiences=[Audience.model_validate_json(a) for a in audiences],
        )

    async def save_advertiser(self, advertiser: Advertiser) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.ADVERTISERS, advertiser.id, advertiser.model_dump_json())
            pipe.incr(keys.CONFIG_VERSION)
            await pipe.execute()

    async def delete_advertiser(self, advertiser: Advertiser, audiences: list[Audience]) -> None:
        """Delete an advertiser with its audiences; its pixel stops recording at once."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.ADVERTISERS, advertiser.id)
            if audiences:
                pipe.hdel(keys.AUDIENCES, *(a.id for a in audiences))
            pipe.incr(keys.CONFIG_VERSION)
            await pipe.execute()

    async def save_audience(self, audience: Audience) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.AUDIENCES, audience.id, audience.model_dump_json())
            pipe.incr(keys.CONFIG_VERSION)
            await pipe.execute()

    async def delete_audience(self, audience: Audience) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.AUDIENCES, audience.id)
            pipe.incr(keys.CONFIG_VERSION)
            await pipe.execute()
