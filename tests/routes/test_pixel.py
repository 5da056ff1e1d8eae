"""The purchase pixel, as an advertiser's order-confirmation page uses it."""

from __future__ import annotations

import random
import string
from urllib.parse import quote

import httpx
import pytest
from redis.asyncio import Redis

from retarget.clock import FrozenClock
from retarget.pixel import GIF
from tests.helpers import (
    command_names,
    commands_sent,
    create_advertiser,
    create_audience,
    export_user,
    fire_pixel,
    serving,
)

DAY = 86_400


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> dict:
    advertiser = await create_advertiser(client)
    books = await create_audience(
        client, advertiser["id"], name="book buyers", categories=["books"], membership_days=30
    )
    big = await create_audience(client, advertiser["id"], name="big spenders", min_value=100)
    return {"advertiser": advertiser, "books": books, "big": big}


async def user_keys(redis: Redis) -> list[bytes]:
    return [k async for k in redis.scan_iter() if not k.startswith(b"{cfg}")]


async def test_a_new_browser_gets_an_rt_uid_cookie(client: httpx.AsyncClient, shop: dict) -> None:
    response = await fire_pixel(client, shop["advertiser"]["pixel_id"], cat="books")

    assert response.status_code == 200
    assert response.content == GIF
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"].startswith("no-store")
    cookie = response.headers["set-cookie"]
    uid = response.cookies["rt_uid"]
    assert len(uid) == 22
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Path=/", "Max-Age=31536000"):
        assert attribute in cookie


async def test_a_returning_browser_keeps_its_rt_uid(client: httpx.AsyncClient, shop: dict) -> None:
    first = await fire_pixel(client, shop["advertiser"]["pixel_id"])
    uid = first.cookies["rt_uid"]

    second = await fire_pixel(client, shop["advertiser"]["pixel_id"], uid=uid)

    assert second.cookies["rt_uid"] == uid


async def test_the_cookie_domain_comes_from_settings(redis: Redis, settings, clock) -> None:
    from asgi_lifespan import LifespanManager

    from retarget.app import create_app

    app = create_app(settings.model_copy(update={"cookie_domain": "ads.example.net"}), clock=clock)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
            advertiser = await create_advertiser(client)
            response = await fire_pixel(client, advertiser["pixel_id"])
    assert "Domain=ads.example.net" in response.headers["set-cookie"]


async def test_a_purchase_joins_every_matching_audience_with_its_expiry(
    client: httpx.AsyncClient, shop: dict, clock: FrozenClock
) -> None:
    hit = await fire_pixel(
        client, shop["advertiser"]["pixel_id"], cat="books", sku="B-1", val="25.00", oid="o-1"
    )
    uid = hit.cookies["rt_uid"]

    exported = await export_user(client, "cookie", uid)

    assert [m["audience_id"] for m in exported["memberships"]] == [shop["books"]["id"]]
    (membership,) = exported["memberships"]
    assert membership["since"] == int(clock.now())
    assert membership["expires_at"] == int(clock.now()) + 30 * DAY
    assert membership["active"] is True
    assert exported["last_purchases"][shop["advertiser"]["id"]]["sku"] == "B-1"


async def test_an_order_over_min_value_joins_the_big_spenders(
    client: httpx.AsyncClient, shop: dict
) -> None:
    hit = await fire_pixel(client, shop["advertiser"]["pixel_id"], cat="garden", val="150")

    exported = await export_user(client, "cookie", hit.cookies["rt_uid"])

    assert [m["audience_id"] for m in exported["memberships"]] == [shop["big"]["id"]]


async def test_a_view_event_does_not_join_a_purchase_audience(
    client: httpx.AsyncClient, shop: dict
) -> None:
    hit = await fire_pixel(client, shop["advertiser"]["pixel_id"], ev="view", cat="books")

    exported = await export_user(client, "cookie", hit.cookies["rt_uid"])

    assert exported["memberships"] == []


async def test_a_buyer_is_eligible_only_after_delay_days(
    client: httpx.AsyncClient, shop: dict, clock: FrozenClock
) -> None:
    delayed = await create_audience(
        client, shop["advertiser"]["id"], name="refill", membership_days=60, delay_days=20
    )
    hit = await fire_pixel(client, shop["advertiser"]["pixel_id"], cat="ink")

    exported = await export_user(client, "cookie", hit.cookies["rt_uid"])

    (membership,) = [m for m in exported["memberships"] if m["audience_id"] == delayed["id"]]
    assert membership["eligible_from"] == int(clock.now()) + 20 * DAY
    assert membership["expires_at"] == int(clock.now()) + 60 * DAY


async def test_membership_ends_after_membership_days(
    client: httpx.AsyncClient, shop: dict, clock: FrozenClock
) -> None:
    hit = await fire_pixel(client, shop["advertiser"]["pixel_id"], cat="books")
    uid = hit.cookies["rt_uid"]

    clock.advance(30 * DAY - 1)
    still_in = await export_user(client, "cookie", uid)
    clock.advance(1)
    expired = await export_user(client, "cookie", uid)

    assert still_in["memberships"][0]["active"] is True
    assert expired["memberships"][0]["active"] is False


async def test_a_new_purchase_renews_membership_and_restarts_the_delay(
    client: httpx.AsyncClient, shop: dict, clock: FrozenClock
) -> None:
    first = await fire_pixel(client, shop["advertiser"]["pixel_id"], cat="books", oid="o-1")
    uid = first.cookies["rt_uid"]
    clock.advance(10 * DAY)

    await fire_pixel(client, shop["advertiser"]["pixel_id"], uid=uid, cat="books", oid="o-2")

    (membership,) = (await export_user(client, "cookie", uid))["memberships"]
    assert membership["since"] == int(clock.now())
    assert membership["expires_at"] == int(clock.now()) + 30 * DAY


async def test_replaying_an_order_id_records_one_purchase(
    client: httpx.AsyncClient, shop: dict, clock: FrozenClock
) -> None:
    pixel_id = shop["advertiser"]["pixel_id"]
    first = await fire_pixel(client, pixel_id, cat="books", sku="B-1", oid="order-77")
    uid = first.cookies["rt_uid"]
    clock.advance(3600)

    replay = await fire_pixel(client, pixel_id, uid=uid, cat="books", sku="B-2", oid="order-77")

    assert replay.status_code == 200
    exported = await export_user(client, "cookie", uid)
    assert [member for member, _ in exported["seen_event_ids"]] == [
        f"{shop['advertiser']['id']}:order-77"
    ]
    assert exported["memberships"][0]["since"] == int(clock.now()) - 3600
    assert exported["last_purchases"][shop["advertiser"]["id"]]["sku"] == "B-1"


async def test_a_pixel_writes_only_into_its_own_advertisers_audiences(
    client: httpx.AsyncClient, shop: dict
) -> None:
    other = await create_advertiser(client, "Garden Shop", "garden.example.com")
    await create_audience(client, other["id"], name="everyone")

    hit = await fire_pixel(client, shop["advertiser"]["pixel_id"], cat="books")

    exported = await export_user(client, "cookie", hit.cookies["rt_uid"])
    audience_owners = {m["advertiser_id"] for m in exported["memberships"]}
    assert audience_owners == {shop["advertiser"]["id"]}
    assert list(exported["last_purchases"]) == [shop["advertiser"]["id"]]


@pytest.mark.parametrize(
    ("headers", "cookie"),
    [({"Sec-GPC": "1"}, None), ({}, "rt_optout=1")],
    ids=["global-privacy-control", "opt-out-cookie"],
)
async def test_an_opted_out_browser_is_not_recorded(
    client: httpx.AsyncClient, shop: dict, redis: Redis, headers: dict, cookie: str | None
) -> None:
    if cookie:
        headers = {**headers, "Cookie": cookie}

    response = await client.get(
        f"/px/{shop['advertiser']['pixel_id']}.gif", params={"cat": "books"}, headers=headers
    )

    assert response.status_code == 200
    assert response.content == GIF
    assert "set-cookie" not in response.headers
    assert await user_keys(redis) == []


async def test_an_unknown_pixel_gets_a_gif_and_a_404(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    response = await client.get("/px/px_doesnotexist.gif?cat=books")

    assert response.status_code == 404
    assert response.content == GIF
    assert response.headers["x-retarget-error"] == "pixel_id: unknown pixel"
    assert await user_keys(redis) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"val": "12,50"}, "val"),
        ({"val": "-3"}, "val"),
        ({"cur": "euro"}, "cur"),
        ({"ev": "refund"}, "ev"),
        ({"sku": "x" * 129}, "sku"),
        ({"cat": "books\x00"}, "cat"),
        ({"oid": "o" * 500}, "oid"),
    ],
)
async def test_a_malformed_parameter_gets_a_gif_a_400_and_its_name(
    client: httpx.AsyncClient, shop: dict, redis: Redis, params: dict, field: str
) -> None:
    response = await fire_pixel(client, shop["advertiser"]["pixel_id"], **params)

    assert response.status_code == 400
    assert response.content == GIF
    assert response.headers["x-retarget-error"].startswith(f"{field}: ")
    assert await user_keys(redis) == []


async def test_a_forged_rt_uid_is_replaced_by_a_fresh_one(
    client: httpx.AsyncClient, shop: dict
) -> None:
    response = await fire_pixel(client, shop["advertiser"]["pixel_id"], uid="../../etc/passwd")

    assert response.status_code == 200
    assert response.cookies["rt_uid"] != "../../etc/passwd"
    assert len(response.cookies["rt_uid"]) == 22


async def test_a_pixel_hit_costs_exactly_one_redis_round_trip(
    client: httpx.AsyncClient, shop: dict, redis: Redis
) -> None:
    """Counted by the server: MONITOR lists every command a client sends; commands that the
    script runs inside Redis carry a "lua" source and are not round trips."""
    pixel_id = shop["advertiser"]["pixel_id"]
    await fire_pixel(client, pixel_id, cat="books")  # the first call may load the script
    sent = await commands_sent(
        redis, lambda: fire_pixel(client, pixel_id, cat="books", val="30", oid="o-9")
    )

    assert command_names(sent) == ["EVALSHA"]


async def test_ten_thousand_malformed_pixel_hits_get_no_5xx(
    client: httpx.AsyncClient, shop: dict
) -> None:
    rng = random.Random(20261123)
    alphabet = string.printable + "\x00\x7f\u00e9\u202e\U0001f600<>\"'&%"
    names = ["ev", "sku", "cat", "val", "cur", "oid", "x", ""]
    pixel_ids = [shop["advertiser"]["pixel_id"], "px_unknown", "", "%00", "a" * 300]
    statuses: set[int] = set()

    for _ in range(10_000):
        params = {
            rng.choice(names): "".join(rng.choices(alphabet, k=rng.randint(0, 200)))
            for _ in range(rng.randint(0, 5))
        }
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
        cookie = "".join(rng.choices(alphabet.replace(";", ""), k=rng.randint(0, 40)))
        response = await client.get(
            f"/px/{quote(rng.choice(pixel_ids))}.gif?{query}",
            headers={"Cookie": f"rt_uid={quote(cookie)}"},
        )
        statuses.add(response.status_code)
        assert response.status_code < 500, (params, response.headers)

    assert statuses >= {200, 400, 404}


async def test_a_buyer_of_more_categories_than_the_bound_keeps_the_newest_memberships(
    settings, clock: FrozenClock, redis: Redis
) -> None:
    """max_memberships_per_user bounds every field of a buyer's profile; the oldest go."""
    async with serving(settings.model_copy(update={"max_memberships_per_user": 3}), clock) as c:
        advertiser = await create_advertiser(c)
        audiences = [
            (await create_audience(c, advertiser["id"], name=f"c{k}", categories=[f"c{k}"]))["id"]
            for k in range(5)
        ]
        uid = None
        for k in range(5):
            response = await fire_pixel(c, advertiser["pixel_id"], uid=uid, cat=f"c{k}")
            uid = response.cookies.get("rt_uid") or uid
            clock.advance(60)
        (profile,) = [k async for k in redis.scan_iter(match="*:p")]
        kept = await redis.hkeys(profile)
        # A hit that only renews a membership it has adds no field: nothing is dropped.
        await fire_pixel(c, advertiser["pixel_id"], uid=uid, cat="c4")
        renewed = await redis.hkeys(profile)

    memberships = sorted(k.decode() for k in kept if k.startswith(b"m:"))
    assert memberships == sorted(f"m:{audience}" for audience in audiences[3:])
    assert len(kept) == 3  # the two newest memberships and the last purchase
    assert sorted(renewed) == sorted(kept)
