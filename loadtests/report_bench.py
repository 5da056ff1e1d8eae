"""What a report costs: reading a range of daily counter hashes and building the report.

    .venv/bin/python loadtests/report_bench.py --days 400 --fields 1000

Starts its own redis-server (the one the service embeds), fills ``{stats}:<day>`` for
``--days`` days with ``--fields`` counters each, spread over 100 advertisers (so one
advertiser's report reads every advertiser's fields and keeps 1 %), then times
``ReportStore.stat_rows`` and ``build_report`` as ``GET /v1/reports`` calls them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from redis.asyncio import Redis

from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.reports import build_report, report_query
from retarget.store.reports import ReportStore

START = date(2027, 1, 1)


async def measure(url: str, days: int, fields: int, runs: int) -> None:
    redis = Redis.from_url(url)
    for offset in range(days):
        day = (START + timedelta(days=offset)).strftime("%Y%m%d")
        counters = {
            f"impressions|adv_{i % 100}|cmp_{i % 1000}|cr_{i}|pub_{i % 50}|social": i
            for i in range(fields)
        }
        await redis.hset("{stats}:" + day, mapping=counters)  # type: ignore[arg-type]
    query = report_query(
        "adv_7", START, START + timedelta(days=days - 1), ["day", "campaign"], START
    )
    store = ReportStore(redis)
    reads, builds = [], []
    for _ in range(runs):
        started = time.perf_counter()
        stats = await store.stat_rows(query.days, query.advertiser_id)
        read = time.perf_counter()
        report = build_report(query, stats, {})
        reads.append(read - started)
        builds.append(time.perf_counter() - read)
    await redis.aclose()
    print(
        f"{days} days x {fields} counters ({days * fields:,} fields, 1 % the advertiser's): "
        f"read median {statistics.median(reads):.3f} s, build median "
        f"{statistics.median(builds):.3f} s, {len(report.rows)} rows, {runs} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--fields", type=int, default=1000, help="counters per day")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), port=free_port())
        server.start()
        try:
            asyncio.run(measure(server.url, args.days, args.fields, args.runs))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
