"""How long one counters flush holds the event loop, by how its commands are sent.

    .venv/bin/python loadtests/flush_bench.py [--campaigns 45] [--flushes 50]

A flush runs on the same event loop as the decisions: while it packs its commands and reads
their replies, nothing else runs, and at high load every decision that arrives meanwhile
queues behind it. This fills the counters as a quarter of a second of decisions would
(``--campaigns`` winning campaigns, at 6,500 decisions/s: one report counter and two spend
increments each, over a spend hash of 1,000 campaigns, all with a budget, so the flush reads
back the spend of all 1,000), then times each flush in CPU
seconds of this process (the wait for Redis costs none), sent either through redis-py's
pipeline (the pooled client, used on a cluster) or through the hot paths' auto-pipeline
(``AutoPipeline.execute_many``, used on one server), against an embedded redis-server.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from retarget.embedded_redis import EmbeddedRedis
from retarget.publishers import SiteCategory
from retarget.store import keys
from retarget.store.autopipeline import AutoPipeline
from retarget.store.client import command_batches, pipelined
from retarget.store.counters import Counters

DECISIONS_PER_FLUSH = 6_500 // 4


async def flush_cpu_ms(counters: Counters, campaigns: int, flushes: int) -> list[float]:
    times = []
    for _ in range(flushes):
        for n in range(DECISIONS_PER_FLUSH):
            campaign = f"cmp_{n % campaigns:04d}"
            counters.serve(campaign)
            counters.count("decisions", "adv_1", campaign, "crv_1", "pub_1", SiteCategory.SOCIAL)
        started = time.process_time()
        await counters.flush()
        times.append((time.process_time() - started) * 1000)
    return times


async def measure(url: str, campaigns: int, flushes: int) -> list[tuple[str, list[float]]]:
    redis = Redis.from_url(url)
    hot = AutoPipeline(url, connect_timeout=1, socket_timeout=1, client_name="flush-bench")
    await hot.connect()
    campaigns_with_budget = [f"cmp_{n:04d}" for n in range(1_000)]
    await redis.hset(keys.SPEND_TOTAL, mapping=dict.fromkeys(campaigns_with_budget, 1))

    results = []
    for name, send in (
        ("redis-py pipeline", functools.partial(pipelined, redis)),
        ("auto-pipeline (hiredis)", command_batches(redis, hot)),
    ):
        # Every campaign with a budget: the flush reads back the spend of all 1,000.
        counters = Counters(send, time.time, watched=lambda: campaigns_with_budget)
        await flush_cpu_ms(counters, campaigns, 5)  # warm up
        results.append((name, await flush_cpu_ms(counters, campaigns, flushes)))
    await hot.aclose()
    await redis.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=45)
    parser.add_argument("--flushes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory, EmbeddedRedis(Path(directory)) as embedded:
        results = asyncio.run(measure(embedded.url, args.campaigns, args.flushes))
    print(f"{args.campaigns} campaigns, {DECISIONS_PER_FLUSH:,} decisions per flush")
    print("| sent through | commands per flush | CPU ms per flush, median | p90 |")
    print("| --- | ---: | ---: | ---: |")
    for name, times in results:
        p90 = statistics.quantiles(times, n=10)[-1]
        commands = 3 * args.campaigns + 4
        print(f"| {name} | {commands} | {statistics.median(times):.2f} | {p90:.2f} |")


if __name__ == "__main__":
    main()
