"""Decisions through a real uvicorn over HTTP: caps under concurrency, budgets under load,
and a Redis that goes away and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from retarget.clock import FrozenClock
from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.settings import Settings
from retarget.signing import sign
from retarget.users import new_cookie_id
from tests.e2e.served import running
from tests.helpers import Shop, create_campaign, decide, open_shop, purchase

pytestmark = pytest.mark.e2e

DAY = 86_400
NO_FILL = "x-retarget-no-fill"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test alone, on a TCP port, which the test may stop and start."""
    server = EmbeddedRedis(tmp_path / "own-redis", port=free_port())
    server.start()
    yield server
    server.stop()


async def campaign_for(client: httpx.AsyncClient, shop: Shop, **fields: Any) -> dict[str, Any]:
    return await create_campaign(client, shop.advertiser_id, [shop.audience_id], **fields)


async def book_buyers(
    client: httpx.AsyncClient, shop: Shop, clock: FrozenClock, count: int
) -> list[str]:
    """``count`` new browsers that bought a book, sent in one batch by the shop's backend."""
    uids = [new_cookie_id() for _ in range(count)]
    events = [
        {"event_id": f"order-{i}", "ts": int(clock.now()), "user": {"cookie": uid}}
        | {"product_name": "Dune", "category": "books"}
        for i, uid in enumerate(uids)
    ]
    body = orjson.dumps({"events": events})
    response = await client.post(
        "/v1/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Retarget-Advertiser": shop.advertiser_id,
            "X-Retarget-Signature": sign(shop.s2s_secret, body, int(clock.now())),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == count
    return uids


async def decide_at_once(base_url: str, api_key: str, uids: list[str]) -> list[httpx.Response]:
    """One decision per user, all sent at once over as many connections. Spread over several
    clients: one httpx pool slows down with the square of the requests waiting in it."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=10))
            for _ in range(len(uids) // 50 + 1)
        ]
        return await asyncio.gather(
            *(decide(clients[i % len(clients)], api_key, uid) for i, uid in enumerate(uids))
        )


def ad_in(response: httpx.Response, placement: str = "feed-top") -> dict[str, Any] | None:
    assert response.status_code == 200, response.text
    return response.json()["decisions"][placement]


# ---- the buyer's journey -----------------------------------------------------------------


async def test_a_buyer_gets_the_advertisers_creative_on_a_social_site_with_the_product_filled(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with running(settings, clock) as client:
        shop = await open_shop(client)
        campaign = await campaign_for(client, shop)
        uid = await purchase(client, shop.pixel_id, pn="Dune", cat="books")

        response = await decide(client, shop.api_key, uid)

    ad = ad_in(response)
    assert ad is not None
    assert ad["advertiser_id"] == shop.advertiser_id
    assert ad["campaign_id"] == campaign["id"]
    assert ad["fields"]["alt_text"] == "Still thinking about Dune?"
    assert ad["click_url"].startswith("http://127.0.0.1:")


async def test_a_user_who_never_bought_gets_no_ad(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with running(settings, clock) as client:
        shop = await open_shop(client)
        await campaign_for(client, shop)

        response = await decide(client, shop.api_key, new_cookie_id())

    assert ad_in(response) is None
    assert response.headers[NO_FILL] == "not_eligible"


async def test_after_the_cap_is_reached_the_next_decision_is_null(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with running(settings, clock) as client:
        shop = await open_shop(client)
        await campaign_for(client, shop, frequency_caps=[{"impressions": 2, "seconds": DAY}])
        uid = await purchase(client, shop.pixel_id)
        served = [ad_in(await decide(client, shop.api_key, uid)) for _ in range(2)]

        response = await decide(client, shop.api_key, uid)

    assert all(served)
    assert ad_in(response) is None


async def test_after_min_interval_seconds_a_new_ad_is_allowed(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with running(settings, clock) as client:
        shop = await open_shop(client)
        await campaign_for(client, shop, min_interval_seconds=600)
        uid = await purchase(client, shop.pixel_id)
        first = await decide(client, shop.api_key, uid)
        too_soon = await decide(client, shop.api_key, uid)

        clock.advance(600)
        response = await decide(client, shop.api_key, uid)

    assert ad_in(first) is not None
    assert ad_in(too_soon) is None
    assert ad_in(response) is not None


# ---- under concurrency -------------------------------------------------------------------


async def test_fifty_concurrent_decisions_for_one_user_against_a_cap_of_3_serve_exactly_3(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with running(settings, clock) as client:
        shop = await open_shop(client)
        await campaign_for(client, shop, frequency_caps=[{"impressions": 3, "seconds": DAY}])
        uid = await purchase(client, shop.pixel_id)

        responses = await asyncio.gather(*(decide(client, shop.api_key, uid) for _ in range(50)))

    ads = [ad for ad in map(ad_in, responses) if ad is not None]
    assert len(ads) == 3
    assert {r.headers.get(NO_FILL) for r in responses} == {None, "not_eligible"}


async def test_under_500_concurrent_decisions_a_daily_budget_of_100_serves_at_most_100_plus_32(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    """The budget is checked in process before the Redis round trip and counted after it, so
    at most ``max_inflight_decisions`` decisions can pass the check together."""
    inflight = 32
    limited = settings.model_copy(update={"max_inflight_decisions": inflight})
    async with running(limited, clock) as client:
        shop = await open_shop(client)
        await campaign_for(client, shop, budget={"daily_impressions": 100, "pacing": "asap"})
        buyers = await book_buyers(client, shop, clock, 500)

        responses = await decide_at_once(str(client.base_url), shop.api_key, buyers)

    served = sum(ad_in(response) is not None for response in responses)
    assert 0 < served <= 100 + inflight


# ---- when Redis goes away ----------------------------------------------------------------


async def test_with_redis_stopped_decisions_answer_200_with_nulls_within_the_deadline(
    settings: Settings, clock: FrozenClock, own_redis: EmbeddedRedis
) -> None:
    own = settings.model_copy(update={"redis_url": own_redis.url, "decision_deadline_ms": 50})
    deadline = own.decision_deadline_ms / 1000
    async with running(own, clock) as client:
        shop = await open_shop(client)
        await campaign_for(client, shop)
        uid = await purchase(client, shop.pixel_id)
        assert ad_in(await decide(client, shop.api_key, uid)) is not None
        own_redis.stop()

        timed: list[tuple[float, httpx.Response]] = []
        for _ in range(20):
            started = time.perf_counter()
            response = await decide(client, shop.api_key, uid, ("feed-top", "feed-bottom"))
            timed.append((time.perf_counter() - started, response))

    for _, response in timed:
        assert response.status_code == 200
        assert response.json() == {"decisions": {"feed-top": None, "feed-bottom": None}}
        assert response.headers[NO_FILL] in ("redis_error", "deadline", "breaker_open")
    assert max(seconds for seconds, _ in timed) <= deadline + 0.010


async def test_after_redis_restarts_ads_return_without_restarting_the_app(
    settings: Settings, clock: FrozenClock, own_redis: EmbeddedRedis
) -> None:
    async with running(settings.model_copy(update={"redis_url": own_redis.url}), clock) as client:
        shop = await open_shop(client)
        await campaign_for(client, shop)
        uid = await purchase(client, shop.pixel_id)
        own_redis.stop()
        assert ad_in(await decide(client, shop.api_key, uid)) is None

        own_redis.start()  # same port, same append-only file: the buyer is still a buyer
        # The first decisions may still fail, once per pooled connection that died with the
        # server; poll (a few seconds at most) until an ad comes back.
        response = await decide(client, shop.api_key, uid)
        async with asyncio.timeout(5):
            while ad_in(response) is None:
                await asyncio.sleep(0.02)
                response = await decide(client, shop.api_key, uid)

    assert ad_in(response) is not None
