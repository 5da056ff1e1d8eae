"""Report counters and budget spend across workers, against a real redis-server."""

from __future__ import annotations

import functools

from redis.asyncio import Redis

from retarget.budgets import Spend
from retarget.store.client import pipelined
from retarget.store.counters import READ_BACK_BATCH, Counters
from tests.conftest import T0


def worker(redis: Redis, watched: tuple[str, ...] = ()) -> Counters:
    """One worker's counters, reading back the spend of ``watched`` at each flush."""
    return Counters(functools.partial(pipelined, redis), lambda: T0, watched=lambda: watched)


async def commands_run(redis: Redis) -> int:
    """Commands Redis has run so far, apart from INFO itself."""
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


async def test_a_budgeted_campaigns_spend_on_one_worker_reaches_the_others_at_their_flush(
    redis: Redis,
) -> None:
    one, other = worker(redis, ("cmp_budget",)), worker(redis, ("cmp_budget",))
    for _ in range(3):
        one.serve("cmp_budget")
    other.serve("cmp_budget")

    await one.flush()
    assert other.spend("cmp_budget") == Spend(total=1, today=1)  # its own, until it flushes
    await other.flush()

    assert other.spend("cmp_budget") == Spend(total=4, today=4)
    assert one.spend("cmp_budget") == Spend(total=3, today=3)  # the other's 1 comes next flush


async def test_a_campaign_without_a_budget_is_counted_but_not_read_back(redis: Redis) -> None:
    one, other = worker(redis, ("cmp_budget",)), worker(redis, ("cmp_budget",))
    one.serve("cmp_free")
    one.serve("cmp_free")
    await one.flush()
    await other.flush()

    assert other.spend("cmp_free") == Spend()  # no decision needs it
    # A page that shows it reads every worker's count.
    assert await other.global_spend(["cmp_free", "cmp_budget", "cmp_unknown"]) == {
        "cmp_free": Spend(total=2, today=2),
        "cmp_budget": Spend(),
        "cmp_unknown": Spend(),
    }


async def test_an_idle_worker_with_no_budget_to_watch_sends_redis_nothing(redis: Redis) -> None:
    idle = worker(redis)
    before = await commands_run(redis)

    for _ in range(5):
        await idle.flush()

    assert await commands_run(redis) == before


async def test_a_spend_gone_from_redis_is_reported_as_changed(redis: Redis) -> None:
    # A restore or failover that lost the spend, or a reset: the campaign its budget blocked
    # must be checked again, not stay blocked until the day is over.
    one = worker(redis, ("cmp_budget",))
    changed: list[set[str]] = []
    one.on_spend_change(changed.append)
    one.serve("cmp_budget")
    await one.flush()
    assert changed == [{"cmp_budget"}]

    await redis.delete(*[key async for key in redis.scan_iter(match="{spend}:*")])
    await one.flush()

    assert changed == [{"cmp_budget"}, {"cmp_budget"}]
    assert one.spend("cmp_budget") == Spend()


async def test_the_spend_of_more_budgeted_campaigns_than_one_read_takes_is_all_read_back(
    redis: Redis,
) -> None:
    watched = tuple(f"cmp_{n:05d}" for n in range(2 * READ_BACK_BATCH + 1))
    one, other = worker(redis, watched), worker(redis, watched)
    for campaign in (watched[0], watched[READ_BACK_BATCH], watched[-1], watched[-1]):
        one.serve(campaign)

    await one.flush()
    await other.flush()

    edges = (0, READ_BACK_BATCH - 1, READ_BACK_BATCH, len(watched) - 2, len(watched) - 1)
    assert [other.spend(watched[n]).today for n in edges] == [1, 0, 1, 0, 2]
