"""Report counters and budget spend: tallied in process, flushed to Redis in the background.

A decision or a tracking hit must cost one Redis round trip, so counters are not written
per request: each worker adds them up in memory and flushes them every
``counters_flush_seconds`` in one pipeline, which also reads back the global spend of the
campaigns with a budget (``watched``), the only ones a decision needs it for (past
``READ_BACK_BATCH`` of them, the rest in further reads of that many). Reading back
every campaign's instead cost a flush 0.76 ms of CPU at 1,000 campaigns and 5.2 ms at
10,000, four times a second per worker, on the decisions' event loop. A crash loses at most
one interval of counts; budgets can be overspent by what other workers served since their
last flush (documented in docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from itertools import compress
from operator import ne
from typing import Any

from retarget.attribution import Conversion
from retarget.budgets import Spend, day_of
from retarget.clock import wait_or_stop
from retarget.store import keys
from retarget.store.client import Commands

log = logging.getLogger("retarget")

FIELD_SEPARATOR = "|"
# Campaigns whose spend one read brings back. The read shares the hot paths' connection and
# event loop: reading 6,700 at once (a 10,000-campaign catalog) held both for ~1.7 ms four
# times a second, which was the p99 of decisions at 20/s (1.65x that of 10 campaigns;
# flat with the flush every 30 s). In batches, a decision waits behind one batch at most.
READ_BACK_BATCH = 1_000


class Counters:
    def __init__(
        self,
        send: Callable[[Commands], Awaitable[list[Any]]],
        now: Callable[[], float],
        watched: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self._send = send  # store.client.command_batches
        self._now = now
        self._watched = watched  # the campaigns whose global spend a flush reads back
        self._stats: Counter[tuple[str, str]] = Counter()  # (day, field) -> n
        self._served: Counter[str] = Counter()  # campaign -> impressions since last flush
        # The global spend read back at the last flush, as Redis replied (bytes or None), in
        # the order of the campaigns read: a flush compares replies in C instead of building
        # and comparing dicts (at 6,700 watched campaigns, 2.9 ms of the event loop).
        self._ids: Sequence[str] = ()
        self._position: dict[str, int] = {}  # campaign -> its place in _ids
        self._total: list[bytes | None] = []
        self._today: list[bytes | None] = []
        self._today_day = ""
        self._spend_listeners: list[Callable[[set[str]], None]] = []
        # One flush at a time: a report's flush must not return while the background one
        # still has the latest counts in flight.
        self._flushing = asyncio.Lock()

    def count(
        self, metric: str, *dimensions: str, amount: int | float = 1, at: float | None = None
    ) -> None:
        """Add to a report counter: ``metric|advertiser|campaign|creative|publisher|category``,
        of the UTC day of ``at`` (default: now)."""
        field = FIELD_SEPARATOR.join((metric, *dimensions))
        day = day_of(self._now() if at is None else at)
        self._stats[(day, field)] += amount  # type: ignore[assignment]

    def conversion(self, conversion: Conversion) -> None:
        """One conversion and its revenue, on the purchase's day, under the credited ad."""
        touch = conversion.touch
        dimensions = (
            conversion.advertiser_id,
            touch.campaign_id,
            touch.creative_id,
            touch.publisher_id,
            touch.site_category,
        )
        self.count(conversion.metric, *dimensions, at=conversion.ts)
        if conversion.revenue_micros:
            self.count(
                "revenue_micros", *dimensions, amount=conversion.revenue_micros, at=conversion.ts
            )

    def on_spend_change(self, listener: Callable[[set[str]], None]) -> None:
        """Call ``listener`` with the campaigns whose global spend a flush found changed."""
        self._spend_listeners.append(listener)

    def serve(self, campaign_id: str) -> None:
        """One more impression of the campaign, for its budget."""
        self._served[campaign_id] += 1

    def spend(self, campaign_id: str) -> Spend:
        """Global spend at the last flush plus what this worker served since (a campaign not
        ``watched``: this worker's since its last flush)."""
        local = self._served.get(campaign_id, 0)
        at = self._position.get(campaign_id)
        if at is None:
            return Spend(total=local, today=local)
        total = int(self._total[at] or 0)
        today = int(self._today[at] or 0) if self._today_day == day_of(self._now()) else 0
        return Spend(total=total + local, today=today + local)

    async def flush(self) -> None:
        """Add what we counted and read back global spend: one round trip, and one more per
        ``READ_BACK_BATCH`` watched campaigns past the first. When it returns, everything
        counted before the call is in Redis."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        stats, served = self._stats, self._served
        self._stats, self._served = Counter(), Counter()
        day = day_of(self._now())
        commands: list[tuple[object, ...]] = []
        for (stat_day, field), amount in stats.items():
            verb = "HINCRBYFLOAT" if isinstance(amount, float) else "HINCRBY"
            commands.append((verb, keys.stats(stat_day), field, amount))
        for stat_day in {stat_day for stat_day, _ in stats}:
            commands.append(("EXPIRE", keys.stats(stat_day), keys.STATS_TTL))
        for campaign_id, amount in served.items():
            commands.append(("HINCRBY", keys.SPEND_TOTAL, campaign_id, amount))
            commands.append(("HINCRBY", keys.spend_day(day), campaign_id, amount))
        if served:
            commands.append(("EXPIRE", keys.spend_day(day), 3 * 86_400))
        watched = self._watched()
        first = watched[:READ_BACK_BATCH]
        if first:
            commands += _spend_reads(first, day)
        if not commands:
            return  # nothing counted, nothing to read: an idle worker costs Redis nothing
        try:
            replies = await self._send(commands)
        except Exception:
            # Keep the counts for the next flush rather than lose them.
            self._stats.update(stats)
            self._served.update(served)
            raise
        total, today = (list(replies[-2]), list(replies[-1])) if first else ([], [])
        for start in range(READ_BACK_BATCH, len(watched), READ_BACK_BATCH):
            more = await self._send(_spend_reads(watched[start : start + READ_BACK_BATCH], day))
            total += more[0]
            today += more[1]
        if watched == self._ids and day == self._today_day:
            # A spend that is gone (a restore or failover that lost it, a reset) is a change
            # too, or a campaign its budget blocked would stay blocked all day.
            changed = set(compress(watched, map(ne, total, self._total)))
            changed.update(compress(watched, map(ne, today, self._today)))
        else:  # a new catalog, or a new day: any of them may have moved
            changed = {*watched, *self._ids}
            self._ids, self._position = watched, {c: i for i, c in enumerate(watched)}
        self._total, self._today, self._today_day = total, today, day
        if changed:
            for listener in self._spend_listeners:
                listener(changed)

    async def global_spend(self, campaign_ids: Sequence[str]) -> dict[str, Spend]:
        """Every worker's spend of these campaigns as Redis has it: this worker's own counts
        since its last ``flush`` are not in it (for pages that show it, which flush first;
        decisions use ``spend``)."""
        if not campaign_ids:
            return {}
        totals, todays = _spend_amounts(
            campaign_ids, await self._send(_spend_reads(campaign_ids, day_of(self._now())))
        )
        return {c: Spend(total=totals.get(c, 0), today=todays.get(c, 0)) for c in campaign_ids}

    async def keep_flushing(self, interval: float, stop: asyncio.Event) -> None:
        """Flush every ``interval`` until ``stop`` is set."""
        while not await wait_or_stop(stop, interval):
            try:
                await self.flush()
            except Exception as exc:
                log.warning("counter flush failed (%s); retrying next interval", exc)


def _spend_reads(campaign_ids: Sequence[str], day: str) -> list[tuple[object, ...]]:
    """The commands reading the campaigns' total and daily spend (the last two of a batch)."""
    return [
        ("HMGET", keys.SPEND_TOTAL, *campaign_ids),
        ("HMGET", keys.spend_day(day), *campaign_ids),
    ]


def _spend_amounts(
    campaign_ids: Sequence[str], replies: list[Any]
) -> tuple[dict[str, int], dict[str, int]]:
    """Total and daily spend by campaign, from replies that end with ``_spend_reads``'s."""
    total, today = replies[-2:]
    return _by_campaign(campaign_ids, total), _by_campaign(campaign_ids, today)


def _by_campaign(campaign_ids: Sequence[str], amounts: list[Any]) -> dict[str, int]:
    return {c: int(a) for c, a in zip(campaign_ids, amounts, strict=True) if a is not None}
