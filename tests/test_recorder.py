"""Recording through a Redis that goes away: the spool acknowledges, the replay catches up,
the breaker keeps decisions fast. A redis-server of each test's own, stopped and started."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from retarget.clock import FrozenClock
from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.settings import Settings
from retarget.signing import sign
from retarget.users import new_cookie_id
from tests.helpers import create_campaign, decide, fire_pixel, metric, open_shop, serving

NO_FILL = "x-retarget-no-fill"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "own-redis", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own(settings: Settings, own_redis: EmbeddedRedis) -> Settings:
    return settings.model_copy(
        update={
            "redis_url": own_redis.url,
            "spool_replay_seconds": 0.05,
            "breaker_cooldown_seconds": 0.2,
            "breaker_failure_threshold": 3,
        }
    )


async def seen_events(redis_url: str, uid: str) -> set[bytes]:
    async with Redis.from_url(redis_url) as redis:
        return set(await redis.zrange(f"{{u:c:{uid}}}:e", 0, -1))


async def eventually(check: object, seconds: float = 5.0) -> None:
    """Poll ``check`` (an async predicate) until true; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        done = await check()  # type: ignore[operator]
        while not done:
            await asyncio.sleep(0.02)
            done = await check()  # type: ignore[operator]


def post_events(
    client: httpx.AsyncClient, advertiser_id: str, secret: str, events: list[dict], now: float
) -> object:
    body = orjson.dumps({"events": events})
    return client.post(
        "/v1/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Retarget-Advertiser": advertiser_id,
            "X-Retarget-Signature": sign(secret, body, int(now)),
        },
    )


async def test_a_pixel_hit_while_redis_is_down_answers_the_gif_and_is_recorded_when_it_returns(
    own: Settings, own_redis: EmbeddedRedis, clock: FrozenClock
) -> None:
    async with serving(own, clock) as client:
        shop = await open_shop(client)
        own_redis.stop()

        response = await fire_pixel(client, shop.pixel_id, "buyer-0000000000000001", oid="o-7")

        assert response.status_code == 200
        assert response.headers["content-type"] == "image/gif"
        own_redis.start()
        member = f"{shop.advertiser_id}:o-7".encode()
        await eventually(
            lambda: _contains(seen_events(own.redis_url, "buyer-0000000000000001"), member)
        )
        metrics = (await client.get("/metrics")).text
    assert 'retarget_pixel_events_total{result="spooled"} 1.0' in metrics
    assert 'retarget_spool_records_total{result="replayed"} 1.0' in metrics


async def test_a_pixel_hit_answers_at_its_deadline_while_redis_is_frozen_and_is_recorded_once(
    own: Settings, own_redis: EmbeddedRedis, clock: FrozenClock
) -> None:
    """Frozen, not dead: the call waits on an open connection. At the 50 ms deadline the hit
    is spooled and acknowledged; the call itself lands when Redis thaws, and the replay then
    finds the order already there."""
    frozen = own.model_copy(update={"pixel_deadline_ms": 50, "redis_socket_timeout": 5.0})
    assert own_redis.process is not None
    async with serving(frozen, clock) as client:
        shop = await open_shop(client)
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            started = time.perf_counter()
            response = await fire_pixel(client, shop.pixel_id, "buyer-0000000000000002", oid="o-8")
            took = time.perf_counter() - started
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)

        member = f"{shop.advertiser_id}:o-8".encode()
        await eventually(
            lambda: _contains(seen_events(own.redis_url, "buyer-0000000000000002"), member)
        )
        await eventually(lambda: _spool_empty(client))
        metrics = (await client.get("/metrics")).text

    assert (response.status_code, response.headers["content-type"]) == (200, "image/gif")
    assert took < 0.5  # the 5 s socket timeout was not waited for
    assert 'retarget_pixel_events_total{result="spooled"} 1.0' in metrics
    # Whichever reached Redis first, the late call or the replay, the other found the order.
    replayed = metric(metrics, 'retarget_spool_records_total{result="replayed"}')
    duplicate = metric(metrics, 'retarget_spool_records_total{result="duplicate"}')
    assert replayed + duplicate == 1


async def _spool_empty(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).json()["spool_bytes"] == 0


async def _contains(found: object, member: bytes) -> bool:
    return member in await found  # type: ignore[operator]


async def test_a_pixel_hit_without_an_order_id_is_replayed_once_with_a_generated_id(
    own: Settings, own_redis: EmbeddedRedis, clock: FrozenClock
) -> None:
    async with serving(own, clock) as client:
        shop = await open_shop(client)
        own_redis.stop()
        await fire_pixel(client, shop.pixel_id, "buyer-0000000000000002", pn="Dune", cat="books")
        own_redis.start()

        async def replayed() -> bool:
            return len(await seen_events(own.redis_url, "buyer-0000000000000002")) == 1

        await eventually(replayed)
        exported: list[httpx.Response] = []

        async def exported_200() -> bool:
            # A pooled connection that died with Redis fails once (503): ask again.
            exported.append(
                await client.get(
                    "/v1/users/cookie/buyer-0000000000000002",
                    headers={"Authorization": "Bearer test-admin-token"},
                )
            )
            return exported[-1].status_code == 200

        await eventually(exported_200)
        profile = exported[-1].json()
    assert [m["audience_id"] for m in profile["memberships"]] == [shop.audience_id]


async def test_server_events_while_redis_is_down_are_answered_spooled_and_recorded_later(
    own: Settings, own_redis: EmbeddedRedis, clock: FrozenClock
) -> None:
    uids = [new_cookie_id() for _ in range(3)]
    events = [
        {"event_id": f"order-{i}", "ts": int(clock.now()), "user": {"cookie": uid}}
        for i, uid in enumerate(uids)
    ]
    async with serving(own, clock) as client:
        shop = await open_shop(client)
        own_redis.stop()

        response = await post_events(
            client, shop.advertiser_id, shop.s2s_secret, events, clock.now()
        )

        assert response.status_code == 200  # type: ignore[attr-defined]
        body = response.json()  # type: ignore[attr-defined]
        assert (body["accepted"], body["spooled"]) == (0, 3)
        assert {r["status"] for r in body["results"]} == {"spooled"}
        own_redis.start()

        async def all_recorded() -> bool:
            found = [await seen_events(own.redis_url, uid) for uid in uids]
            return found == [{f"{shop.advertiser_id}:order-{i}".encode()} for i in range(3)]

        await eventually(all_recorded)
        again = await post_events(client, shop.advertiser_id, shop.s2s_secret, events, clock.now())
    assert again.json()["duplicates"] == 3  # type: ignore[attr-defined]


async def test_with_the_spool_full_the_pixel_answers_503_and_events_are_not_acknowledged(
    own: Settings, own_redis: EmbeddedRedis, clock: FrozenClock
) -> None:
    tiny = own.model_copy(update={"spool_max_bytes": 4096})
    big = {"sku": "s" * 128, "product_name": "p" * 128, "category": "c" * 128}
    events = [
        {"event_id": "order-1", "ts": int(clock.now()), "user": {"cookie": new_cookie_id()}} | big
    ]
    async with serving(tiny, clock) as client:
        shop = await open_shop(client)
        own_redis.stop()
        answers = [
            (await fire_pixel(client, shop.pixel_id, oid=f"o-{i}", pn="x" * 120)).status_code
            for i in range(20)
        ]

        refused = await post_events(
            client, shop.advertiser_id, shop.s2s_secret, events, clock.now()
        )
        metrics = (await client.get("/metrics")).text

    assert answers[0] == 200
    assert answers[-1] == 503
    assert refused.status_code == 503  # type: ignore[attr-defined]
    assert refused.json()["error"]["code"] == "unavailable"  # type: ignore[attr-defined]
    assert 'retarget_spool_records_total{result="full"}' in metrics


async def test_after_repeated_redis_failures_decisions_answer_breaker_open_and_recover(
    own: Settings, own_redis: EmbeddedRedis, clock: FrozenClock
) -> None:
    async with serving(own, clock) as client:
        shop = await open_shop(client)
        await create_campaign(client, shop.advertiser_id, [shop.audience_id])
        own_redis.stop()
        reasons = [
            (await decide(client, shop.api_key, "buyer-0000000000000003")).headers[NO_FILL]
            for _ in range(5)
        ]
        ready = (await client.get("/readyz")).json()

        own_redis.start()

        async def closed() -> bool:
            await decide(client, shop.api_key, "buyer-0000000000000003")
            return (await client.get("/readyz")).json()["breaker"] == "closed"

        await eventually(closed)
        metrics = (await client.get("/metrics")).text

    assert reasons == ["redis_error"] * 3 + ["breaker_open"] * 2
    assert ready["breaker"] == "open"
    assert ready["error"]["code"] == "redis_unavailable"
    assert 'retarget_redis_breaker_transitions_total{state="open"} 1.0' in metrics
    assert 'retarget_redis_breaker_transitions_total{state="closed"} 1.0' in metrics
    assert "retarget_redis_breaker_state 0.0" in metrics


async def test_a_pixel_hit_refused_by_a_full_redis_is_spooled_and_recorded_once_it_has_room(
    own: Settings, own_redis: EmbeddedRedis, clock: FrozenClock
) -> None:
    uid = new_cookie_id()
    async with serving(own, clock) as client, Redis.from_url(own_redis.url) as redis:
        shop = await open_shop(client)
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", 1)  # every write now answers -OOM

        response = await fire_pixel(client, shop.pixel_id, uid, oid="o-9")

        assert response.status_code == 200
        assert await seen_events(own.redis_url, uid) == set()
        await redis.config_set("maxmemory", 0)
        member = f"{shop.advertiser_id}:o-9".encode()
        await eventually(lambda: _contains(seen_events(own.redis_url, uid), member))
        ready = (await client.get("/readyz")).json()
    assert ready["breaker"] == "closed"  # Redis answered all along: no outage


async def test_a_long_outage_leaves_a_worker_two_spool_files_at_most(
    own: Settings, own_redis: EmbeddedRedis, clock: FrozenClock
) -> None:
    async with serving(own, clock) as client:
        shop = await open_shop(client)
        own_redis.stop()
        for n in range(6):
            await fire_pixel(client, shop.pixel_id, oid=f"o-{n}")
            await asyncio.sleep(own.spool_replay_seconds * 3)  # several replay attempts

        files = [n for n in os.listdir(own.spool_dir) if n.endswith(".spool")]

    assert 1 <= len(files) <= 2
