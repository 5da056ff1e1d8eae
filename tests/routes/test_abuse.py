"""Abuse resistance at the front door: rate limits per IP, pixel and key; bots; proxies."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import Redis

from retarget.app import create_app
from retarget.clock import FrozenClock
from retarget.embedded_redis import free_port
from retarget.pixel import GIF
from retarget.settings import Settings
from retarget.signing import sign
from retarget.store.keys import user_seen_events
from retarget.users import COOKIE_NAME, Namespace, UserRef, new_cookie_id
from tests import raw_asgi
from tests.helpers import (
    ADMIN,
    bearer,
    create_campaign,
    decide,
    hits_with_rotating_forwarded_for,
    open_shop,
    purchase,
)

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PROXY = "10.0.0.7"
FROM_FLOODER = {"client": "203.0.113.9", "user_agent": BROWSER}


@contextlib.asynccontextmanager
async def started(settings: Settings, clock: FrozenClock, **limits: Any) -> AsyncIterator[FastAPI]:
    application = create_app(settings.model_copy(update=limits), clock=clock)
    async with LifespanManager(application) as manager:
        yield manager.app  # type: ignore[misc]


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """A client whose requests arrive from the socket address ``ip``."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40_000))
    return httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers={"User-Agent": BROWSER}
    )


async def memberships(redis: Redis) -> int:
    """Audience memberships held by every user in Redis."""
    total = 0
    async for key in redis.scan_iter(match="{u:*}:p", count=1000):
        total += sum(1 for field in await redis.hkeys(key) if field.startswith(b"m:"))
    return total


async def forged_hits(client: httpx.AsyncClient, pixel_id: str, count: int) -> list[int]:
    """``count`` purchase hits, each from a new browser (no cookie): the statuses."""
    statuses = []
    for n in range(count):
        client.cookies.clear()
        response = await client.get(f"/px/{pixel_id}.gif", params={"cat": "books", "oid": n})
        statuses.append(response.status_code)
    return statuses


def assert_rate_limited_json(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1


# ---- the pixel -----------------------------------------------------------------------------


async def test_ten_thousand_forged_pixel_hits_from_one_ip_add_at_most_the_limit_of_memberships(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with started(settings, clock, pixel_hits_per_ip_per_minute=50) as app:
        async with client_from(app, "203.0.113.9") as client:
            shop = await open_shop(client)
        statuses = [
            # No cookie: each hit is a new browser, so each recorded hit is a new membership.
            (
                await raw_asgi.get(app, f"/px/{shop.pixel_id}.gif", b"cat=books", **FROM_FLOODER)
            ).status
            for _ in range(10_000)
        ]

    assert statuses.count(200) == 50
    assert statuses.count(429) == 10_000 - 50
    assert await memberships(redis) == 50


async def test_a_rate_limited_pixel_hit_still_gets_its_gif_and_records_nothing(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, pixel_hits_per_ip_per_minute=1) as app,
        client_from(app, "203.0.113.9") as client,
    ):
        shop = await open_shop(client)
        await purchase(client, shop.pixel_id)
        before = await memberships(redis)
        response = await client.get(f"/px/{shop.pixel_id}.gif", params={"cat": "books"})

    assert response.status_code == 429
    assert response.content == GIF
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["x-retarget-error"].startswith("rate_limited")
    assert int(response.headers["retry-after"]) == 60
    assert COOKIE_NAME not in response.cookies
    assert await memberships(redis) == before


async def test_the_pixel_limit_refills_as_time_passes(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, pixel_hits_per_ip_per_minute=60) as app,
        client_from(app, "203.0.113.9") as client,
    ):
        shop = await open_shop(client)
        first = await forged_hits(client, shop.pixel_id, 61)
        clock.advance(10)  # ten more tokens
        later = await forged_hits(client, shop.pixel_id, 11)

    assert first.count(200) == 60
    assert later.count(200) == 10


async def test_each_ip_has_its_own_pixel_limit(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, pixel_hits_per_ip_per_minute=3) as app,
        client_from(app, "203.0.113.9") as flooder,
    ):
        shop = await open_shop(flooder)
        await forged_hits(flooder, shop.pixel_id, 10)
        async with client_from(app, "198.51.100.20") as shopper:
            response = await shopper.get(f"/px/{shop.pixel_id}.gif", params={"cat": "books"})

    assert response.status_code == 200
    assert await memberships(redis) == 4


async def test_a_flood_at_one_pixel_from_many_ips_adds_at_most_the_pixel_limit(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, pixel_hits_per_pixel_per_minute=20) as app,
        client_from(app, "192.0.2.1") as admin_client,
    ):
        shop = await open_shop(admin_client)
        statuses = []
        for n in range(100):
            async with client_from(app, f"198.51.100.{n}") as client:
                statuses += await forged_hits(client, shop.pixel_id, 2)

    assert statuses.count(200) == 20
    assert await memberships(redis) == 20


async def test_pixel_limits_still_answer_when_redis_is_down(
    settings: Settings, clock: FrozenClock
) -> None:
    dead = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}", "redis_connect_timeout": 0.05}
    )
    async with (
        started(dead, clock, pixel_hits_per_ip_per_minute=2) as app,
        client_from(app, "203.0.113.9") as client,
    ):
        statuses = await forged_hits(client, "px_anything", 5)

    assert statuses == [503, 503, 429, 429, 429]  # the catalog is not loaded, then the limit


# ---- client IP and proxies ---------------------------------------------------------------


async def test_a_rotating_x_forwarded_for_from_an_untrusted_peer_earns_no_extra_hits(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, pixel_hits_per_ip_per_minute=5) as app,
        client_from(app, "203.0.113.9") as client,
    ):
        shop = await open_shop(client)
        statuses = await hits_with_rotating_forwarded_for(client, shop.pixel_id, 50)

    assert statuses.count(200) == 5
    assert await memberships(redis) == 5


async def test_behind_a_trusted_proxy_the_forwarded_client_ip_is_the_one_limited(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(
            settings, clock, pixel_hits_per_ip_per_minute=3, trusted_proxies="10.0.0.0/8"
        ) as app,
        client_from(app, PROXY) as proxy,
    ):
        shop = await open_shop(proxy)

        async def hit(forwarded_for: str) -> int:
            proxy.cookies.clear()
            response = await proxy.get(
                f"/px/{shop.pixel_id}.gif",
                params={"cat": "books"},
                headers={"X-Forwarded-For": forwarded_for},
            )
            return response.status_code

        # The client writes a new address on the left each time; the proxy appends the
        # address it saw (203.0.113.9), and then a second proxy hop of ours.
        flood = [await hit(f"192.0.2.{n}, 203.0.113.9, 10.1.1.1") for n in range(10)]
        neighbour = await hit("198.51.100.20")

    assert flood.count(200) == 3
    assert neighbour == 200
    assert await memberships(redis) == 4


# ---- APIs --------------------------------------------------------------------------------


async def test_the_admin_api_answers_429_with_retry_after_beyond_the_key_limit(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, api_requests_per_key_per_minute=5) as app,
        client_from(app, "192.0.2.1") as client,
    ):
        replies = [await client.get("/v1/advertisers", headers=ADMIN) for _ in range(6)]
        clock.advance(12)  # one token back
        after_a_while = await client.get("/v1/advertisers", headers=ADMIN)

    assert [r.status_code for r in replies] == [200] * 5 + [429]
    assert_rate_limited_json(replies[-1])
    assert replies[-1].headers["retry-after"] == "12"
    assert after_a_while.status_code == 200


async def test_each_key_has_its_own_api_limit(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, api_requests_per_key_per_minute=12) as app,
        client_from(app, "192.0.2.1") as client,
    ):
        shop = await open_shop(client)  # uses up most of the admin's budget
        advertiser_key = (
            await client.post(f"/v1/advertisers/{shop.advertiser_id}/keys", headers=ADMIN)
        ).json()["api_key"]
        admin_flood = [await client.get("/v1/advertisers", headers=ADMIN) for _ in range(10)]
        own = await client.get(
            f"/v1/advertisers/{shop.advertiser_id}", headers=bearer(advertiser_key)
        )

    assert admin_flood[-1].status_code == 429
    assert own.status_code == 200


async def test_decisions_answer_429_beyond_the_publisher_key_limit(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, decisions_per_key_per_minute=3) as app,
        client_from(app, "192.0.2.1") as client,
    ):
        shop = await open_shop(client)
        replies = [await decide(client, shop.api_key, new_cookie_id()) for _ in range(4)]

    assert [r.status_code for r in replies] == [200, 200, 200, 429]
    assert_rate_limited_json(replies[-1])


async def test_refusals_are_counted_in_the_metrics_by_limit(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, pixel_hits_per_ip_per_minute=1) as app,
        client_from(app, "203.0.113.9") as client,
    ):
        await forged_hits(client, "px_unknown", 3)
        exposition = (await client.get("/metrics")).text

    assert 'retarget_rate_limited_requests_total{limit="pixel_ip"} 2.0' in exposition


# ---- bots --------------------------------------------------------------------------------


async def test_a_known_bot_gets_the_pixel_gif_but_joins_no_audience(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    shop = await open_shop(client)

    response = await client.get(
        f"/px/{shop.pixel_id}.gif", params={"cat": "books"}, headers={"User-Agent": GOOGLEBOT}
    )

    assert response.status_code == 200
    assert response.content == GIF
    assert COOKIE_NAME not in response.cookies
    assert await memberships(redis) == 0


async def test_a_pixel_hit_without_a_user_agent_is_served_but_not_recorded(
    app: FastAPI, redis: Redis
) -> None:
    async with client_from(app, "203.0.113.9") as client:
        shop = await open_shop(client)
        del client.headers["User-Agent"]
        response = await client.get(f"/px/{shop.pixel_id}.gif", params={"cat": "books"})

    assert response.status_code == 200
    assert response.content == GIF
    assert await memberships(redis) == 0


async def test_impressions_and_clicks_from_a_bot_are_served_but_not_counted(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with started(settings, clock) as app, client_from(app, "203.0.113.9") as client:
        shop = await open_shop(client)
        campaign = await create_campaign(client, shop.advertiser_id, [shop.audience_id])
        uid = await purchase(client, shop.pixel_id)
        ad = (await decide(client, shop.api_key, uid)).json()["decisions"]["feed-top"]
        bot = {"User-Agent": GOOGLEBOT}
        impression = await client.get(ad["impression_url"], headers=bot)
        click = await client.get(ad["click_url"], headers=bot)
    # The app has shut down cleanly: its counters are flushed.
    stats = [await redis.hgetall(key) async for key in redis.scan_iter(match="{stats}:*")]

    assert impression.status_code == 200
    assert click.status_code == 302
    assert click.headers["location"] == campaign["creatives"][0]["landing_url"]
    assert not any(field.startswith((b"impressions|", b"clicks|")) for s in stats for field in s)


# ---- server-to-server events ---------------------------------------------------------------


async def test_a_hundred_replays_of_one_signed_event_add_one_purchase(
    client: httpx.AsyncClient, clock: FrozenClock, redis: Redis
) -> None:
    shop = await open_shop(client)
    uid = new_cookie_id()
    event = {
        "event_id": "order-77",
        "ts": int(clock.now()) - 60,
        "user": {"cookie": uid},
        "category": "books",
        "value": 12.5,
    }
    body = orjson.dumps({"events": [event]})
    headers = {
        "Content-Type": "application/json",
        "X-Retarget-Advertiser": shop.advertiser_id,
        "X-Retarget-Signature": sign(shop.s2s_secret, body, int(clock.now())),
    }

    replies = [await client.post("/v1/events", content=body, headers=headers) for _ in range(100)]

    assert [r.json()["accepted"] for r in replies] == [1] + [0] * 99
    assert [r.json()["duplicates"] for r in replies] == [0] + [1] * 99
    assert await redis.zcard(user_seen_events(UserRef(Namespace.COOKIE, uid))) == 1
    assert await memberships(redis) == 1


async def test_a_crawler_fetching_the_ad_iframe_uses_up_no_frequency_cap(
    client: httpx.AsyncClient,
) -> None:
    shop = await open_shop(client)
    await create_campaign(
        client,
        shop.advertiser_id,
        [shop.audience_id],
        frequency_caps=[{"impressions": 1, "seconds": 86_400}],
    )
    uid = await purchase(client, shop.pixel_id)
    frame = {"pub": shop.publisher_id, "placement": "feed-top"}
    cookie = {"Cookie": f"{COOKIE_NAME}={uid}"}

    for _ in range(3):  # a crawler replaying the shopper's page, cookie and all
        await client.get("/v1/ad", params=frame, headers={**cookie, "User-Agent": GOOGLEBOT})
    shopper = await client.get("/v1/ad", params=frame, headers={**cookie, "User-Agent": BROWSER})
    again = await client.get("/v1/ad", params=frame, headers={**cookie, "User-Agent": BROWSER})

    assert "<img" in shopper.text
    assert "<img" not in again.text  # the cap of one is the shopper's, and now used


async def test_the_keyless_ad_tags_are_limited_per_client_ip(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with started(settings, clock, decisions_per_key_per_minute=2) as app:
        async with client_from(app, "192.0.2.1") as admin_client:
            shop = await open_shop(admin_client)
        frame = {"pub": shop.publisher_id, "placement": "feed-top"}
        async with client_from(app, "203.0.113.9") as flooder:
            flood = [(await flooder.get("/v1/ad", params=frame)).status_code for _ in range(3)]
        async with client_from(app, "198.51.100.20") as neighbour:
            other = await neighbour.get("/v1/ad.js", params=frame)

    assert flood == [200, 200, 429]
    assert other.status_code == 200


async def test_health_and_metrics_are_never_rate_limited(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with (
        started(settings, clock, api_requests_per_key_per_minute=1) as app,
        client_from(app, "192.0.2.1") as client,
    ):
        statuses = {(await client.get(path)).status_code for path in ["/healthz", "/metrics"] * 5}

    assert statuses == {200}
