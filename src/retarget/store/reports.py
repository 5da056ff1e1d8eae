"""Reading the report counters back: one pipeline of HGETALLs, one per day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from retarget.reports import StatRow, parse_stat
from retarget.store import keys
from retarget.store.client import RedisClient


class ReportStore:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    async def stat_rows(
        self, days: Sequence[date], advertiser_id: str | None = None
    ) -> list[StatRow]:
        """The report counters of these UTC days, of one advertiser or of all (one round trip).

        Not a hot path: a 400-day report reads 400 hashes, each holding every advertiser's
        counters of its day (docs/reports.md has what that costs)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(keys.stats(day.strftime("%Y%m%d")))
            replies = await pipe.execute()
        wanted = None if advertiser_id is None else advertiser_id.encode()
        rows = []
        for day, stored in zip(days, replies, strict=True):
            for raw_field, raw_value in stored.items():
                # Skip other advertisers before decoding: most of a day's fields are theirs.
                if wanted is not None and raw_field.split(b"|", 2)[1:2] != [wanted]:
                    continue
                row = parse_stat(day, raw_field.decode(), raw_value.decode())
                if row is not None:
                    rows.append(row)
        return rows
