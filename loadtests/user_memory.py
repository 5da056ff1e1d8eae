"""How much Redis memory a user costs: N cookie users, each in 2 audiences with 1 purchase.

    .venv/bin/python loadtests/user_memory.py --users 100000

Starts its own redis-server (the one the service would embed), records the users through
``UserStore.record_many`` exactly as ``POST /v1/events`` does (the same Lua script, batches
of 1,000 in one round trip each), and prints the growth of ``INFO memory`` used_memory.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from retarget.audiences import DAY, Membership
from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.events import Event, EventType
from retarget.settings import Settings
from retarget.store.keys import user_profile, user_seen_events
from retarget.store.scripts import load_script
from retarget.store.users import Recording, UserStore
from retarget.users import Namespace, UserRef, new_cookie_id

BATCH = 1000


def buyer(advertiser_id: str, audience_ids: tuple[str, str], now: float) -> Recording:
    """A new cookie user who just bought a book: a purchase and two memberships."""
    event = Event(
        advertiser_id=advertiser_id,
        type=EventType.PURCHASE,
        ts=now,
        sku=f"SKU-{secrets.randbelow(10**6):06d}",
        category="books",
        value=round(5 + secrets.randbelow(20_000) / 100, 2),
        currency="EUR",
        dedup_id=f"order-{secrets.randbelow(10**10):010d}",
    )
    since = int(now)
    memberships = [
        Membership(audience_ids[0], since, since + 30 * DAY),
        Membership(audience_ids[1], since, since + 90 * DAY),
    ]
    return Recording(UserRef(Namespace.COOKIE, new_cookie_id()), event, memberships)


async def measure(url: str, users: int) -> None:
    defaults = Settings()
    window = defaults.dedup_window_days * DAY
    redis = Redis.from_url(url)
    store = UserStore(
        redis,
        max_fields=defaults.max_memberships_per_user,
        dedup_window_seconds=window,
        keep_seconds=window,
    )
    advertiser_id = "adv_" + secrets.token_hex(6)
    audience_ids = ("aud_" + secrets.token_hex(5), "aud_" + secrets.token_hex(5))
    try:
        server = await redis.info("server")
        # Load the script first so the script cache stays out of the difference.
        await redis.script_load(load_script(redis, "record_event").script)
        memory = await redis.info("memory")
        before = memory["used_memory"]
        started = time.perf_counter()
        for first in range(0, users, BATCH):
            now = time.time()
            batch = [
                buyer(advertiser_id, audience_ids, now) for _ in range(min(BATCH, users - first))
            ]
            if not all(r.new for r in await store.record_many(batch, now)):
                raise SystemExit("a fresh order id was reported as a duplicate")
        elapsed = time.perf_counter() - started
        after = (await redis.info("memory"))["used_memory"]
        key_count = await redis.dbsize()
        sample = batch[0].user
        profile, seen = user_profile(sample), user_seen_events(sample)
        profile_bytes, seen_bytes = (
            await redis.memory_usage(profile),
            await redis.memory_usage(seen),
        )
        encodings = [(await redis.object("encoding", key)).decode() for key in (profile, seen)]
    finally:
        await redis.aclose()

    print(f"redis-server {server['redis_version']} (allocator {memory['mem_allocator']})")
    print(f"users recorded          {users:,} in {elapsed:.1f} s ({users / elapsed:,.0f}/s)")
    print(f"keys                    {key_count:,} ({key_count / users:.2f} per user)")
    print(f"used_memory before      {before:,} bytes")
    print(f"used_memory after       {after:,} bytes")
    print(f"bytes per user          {(after - before) / users:,.0f}")
    print(
        f"MEMORY USAGE of 1 user  profile {profile_bytes} ({encodings[0]})"
        f" + seen events {seen_bytes} ({encodings[1]}) bytes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="cookie users to record")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retarget-memory-") as tmp:
        server = EmbeddedRedis(Path(tmp), port=free_port())
        server.start()
        try:
            asyncio.run(measure(server.url, args.users))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
