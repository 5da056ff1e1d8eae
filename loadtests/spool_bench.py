"""What the durable spool costs: appends per second and their latency, with group commit.

    .venv/bin/python loadtests/spool_bench.py [--dir /path/on/the/disk/to/measure]

``concurrency`` appends are kept in flight at once (as that many pixel hits would while
Redis is down); each waits for its fsync. Group commit writes every append that arrives
during one write + fsync in the next one, so "commits" is how many fsyncs were needed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from retarget.audiences import Membership
from retarget.events import Event, EventType
from retarget.spool import Spool, Spooled
from retarget.store.users import Recording
from retarget.users import Namespace, UserRef, new_cookie_id


def hit(n: int) -> Spooled:
    event = Event("adv_1", EventType.PURCHASE, time.time(), product="Dune", dedup_id=f"o-{n}")
    user = UserRef(Namespace.COOKIE, new_cookie_id())
    now = int(time.time())
    return Spooled(Recording(user, event, [Membership("aud_1", now, now + 86400)]), now)


async def measure(directory: Path, concurrency: int, seconds: float) -> str:
    spool = Spool(directory, max_bytes=1 << 40)
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    counter = iter(range(1 << 62))

    async def loop() -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            await spool.append([hit(next(counter))])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    spool.close()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    return (
        f"| {concurrency} | {len(latencies) / elapsed:,.0f} | {spool.commits / elapsed:,.0f} | "
        f"{statistics.median(latencies) * 1000:.2f} | {p99 * 1000:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a temp dir)")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print("| concurrent appends | appends/s | fsyncs/s | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- | --- |")
    for concurrency in (1, 8, 64, 256):
        with tempfile.TemporaryDirectory(dir=args.dir) as directory:
            print(asyncio.run(measure(Path(directory), concurrency, args.seconds)), flush=True)


if __name__ == "__main__":
    main()
