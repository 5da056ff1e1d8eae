"""Conversions: a purchase after a click on (or a view of) an advertiser's ad is credited to
that ad, through the pixel and through server-to-server events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from retarget.budgets import day_of
from retarget.clock import FrozenClock
from retarget.settings import Settings
from retarget.signing import sign
from tests.conftest import T0
from tests.helpers import (
    ADMIN,
    Shop,
    command_names,
    commands_sent,
    create_campaign,
    decide,
    fire_pixel,
    open_shop,
    purchase,
)

DAY = 86_400
HOUR = 3_600


@dataclass(frozen=True)
class Shown:
    """A buyer ``uid`` who was shown the shop's ad ``ad`` (its impression URL fetched)."""

    shop: Shop
    uid: str
    campaign: dict[str, Any]
    ad: dict[str, Any]

    async def click(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(urlsplit(self.ad["click_url"]).path)).status_code == 302

    @property
    def credited_to(self) -> str:
        """``advertiser|campaign|creative|publisher|category`` of the ad, as counters name it."""
        return "|".join(
            (
                self.shop.advertiser_id,
                self.ad["campaign_id"],
                self.ad["creative_id"],
                self.shop.publisher_id,
                "social",
            )
        )


async def show_ad(client: httpx.AsyncClient, shop: Shop, uid: str | None = None) -> dict:
    uid = uid or await purchase(client, shop.pixel_id)
    ad = (await decide(client, shop.api_key, uid)).json()["decisions"]["feed-top"]
    assert ad is not None
    assert (await client.get(urlsplit(ad["impression_url"]).path)).status_code == 200
    return ad


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No background counter flush or catalog poll: the report flushes what it reads, this
    worker's own changes reach its catalog at once, and the round-trip count below must
    see the pixel's traffic alone."""
    return settings.model_copy(
        update={"counters_flush_seconds": 3600, "catalog_refresh_seconds": 3600}
    )


@pytest.fixture
async def shown(client: httpx.AsyncClient) -> Shown:
    shop = await open_shop(client)
    campaign = await create_campaign(client, shop.advertiser_id, [shop.audience_id])
    uid = await purchase(client, shop.pixel_id)  # joins the audience: no ad seen yet
    return Shown(shop, uid, campaign, await show_ad(client, shop, uid))


async def buy(client: httpx.AsyncClient, shown: Shown, oid: str, val: str = "30") -> None:
    """The buyer orders again, through the pixel."""
    await purchase(client, shown.shop.pixel_id, shown.uid, oid=oid, val=val, cur="EUR")


async def totals(client: httpx.AsyncClient, shop: Shop) -> dict[str, Any]:
    """The advertiser's report totals over the last 40 days (flushes the counters first)."""
    response = await client.get(
        "/v1/reports",
        params={"advertiser_id": shop.advertiser_id, "start": "2027-01-01", "end": "2027-02-09"},
        headers=ADMIN,
    )
    assert response.status_code == 200, response.text
    return response.json()["totals"]


def conversions(figures: dict[str, Any]) -> tuple[int, int, float]:
    return (
        figures["conversions_click_through"],
        figures["conversions_view_through"],
        figures["revenue"],
    )


async def post_events(
    client: httpx.AsyncClient, shop: Shop, clock: FrozenClock, *events: dict[str, Any]
) -> httpx.Response:
    body = orjson.dumps({"events": list(events)})
    headers = {
        "Content-Type": "application/json",
        "X-Retarget-Advertiser": shop.advertiser_id,
        "X-Retarget-Signature": sign(shop.s2s_secret, body, int(clock.now())),
    }
    return await client.post("/v1/events", content=body, headers=headers)


def server_purchase(clock: FrozenClock, event_id: str, **user: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "purchase",
        "ts": int(clock.now()) - 60,
        "user": user,
        "category": "books",
        "value": 42.5,
        "currency": "EUR",
    }


# ---- click-through -----------------------------------------------------------------------


async def test_a_purchase_six_days_after_a_click_is_a_click_through_conversion(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock, redis: Redis
) -> None:
    await shown.click(client)
    clock.advance(6 * DAY)

    await buy(client, shown, "order-2", val="30.25")

    assert conversions(await totals(client, shown.shop)) == (1, 0, 30.25)
    # Credited to the clicked ad, on the purchase's day, in the raw counters themselves.
    stored = await redis.hgetall("{stats}:" + day_of(clock.now()))
    assert int(stored[f"conversion_click|{shown.credited_to}".encode()]) == 1
    assert int(stored[f"revenue_micros|{shown.credited_to}".encode()]) == 30_250_000


async def test_a_purchase_eight_days_after_a_click_is_no_conversion(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    await shown.click(client)
    clock.advance(8 * DAY)

    await buy(client, shown, "order-2")

    assert conversions(await totals(client, shown.shop)) == (0, 0, 0)


async def test_the_click_window_is_the_advertisers_own(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    response = await client.patch(
        f"/v1/advertisers/{shown.shop.advertiser_id}",
        json={"click_window_days": 14},
        headers=ADMIN,
    )
    assert response.json()["click_window_days"] == 14
    await shown.click(client)
    clock.advance(10 * DAY)

    await buy(client, shown, "order-2")

    assert conversions(await totals(client, shown.shop)) == (1, 0, 30)


# ---- view-through ------------------------------------------------------------------------


async def test_a_purchase_hours_after_seeing_an_ad_is_a_view_through_conversion(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    clock.advance(20 * HOUR)

    await buy(client, shown, "order-2")

    assert conversions(await totals(client, shown.shop)) == (0, 1, 30)


async def test_a_purchase_two_days_after_seeing_an_ad_is_no_conversion(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    clock.advance(2 * DAY)

    await buy(client, shown, "order-2")

    assert conversions(await totals(client, shown.shop)) == (0, 0, 0)


async def test_with_a_view_window_of_zero_days_a_view_earns_nothing(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    await client.patch(
        f"/v1/advertisers/{shown.shop.advertiser_id}", json={"view_window_days": 0}, headers=ADMIN
    )
    clock.advance(HOUR)

    await buy(client, shown, "order-2")

    assert conversions(await totals(client, shown.shop)) == (0, 0, 0)


# ---- which touch wins --------------------------------------------------------------------


async def test_the_last_click_beats_a_later_view(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock, redis: Redis
) -> None:
    await shown.click(client)
    # Another campaign's ad is shown later, and not clicked.
    await client.patch(
        f"/v1/campaigns/{shown.campaign['id']}", json={"status": "paused"}, headers=ADMIN
    )
    await create_campaign(client, shown.shop.advertiser_id, [shown.shop.audience_id])
    clock.advance(HOUR)
    later = await show_ad(client, shown.shop, shown.uid)
    assert later["campaign_id"] != shown.campaign["id"]
    clock.advance(HOUR)

    await buy(client, shown, "order-2")

    assert conversions(await totals(client, shown.shop)) == (1, 0, 30)
    stored = await redis.hgetall("{stats}:" + day_of(clock.now()))
    assert int(stored[f"conversion_click|{shown.credited_to}".encode()]) == 1


async def test_every_purchase_inside_the_window_is_a_conversion(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    await shown.click(client)

    for day in range(3):
        clock.advance(DAY)
        await buy(client, shown, f"order-{day}", val="10")

    assert conversions(await totals(client, shown.shop)) == (3, 0, 30)


# ---- what is not a conversion ------------------------------------------------------------


async def test_a_repeated_order_id_counts_once(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    await shown.click(client)

    for _ in range(3):
        await buy(client, shown, "order-2")

    assert conversions(await totals(client, shown.shop)) == (1, 0, 30)


async def test_a_purchase_without_any_ad_seen_is_no_conversion(
    client: httpx.AsyncClient, shown: Shown
) -> None:
    stranger = await purchase(client, shown.shop.pixel_id, val="99", oid="o-1")

    await purchase(client, shown.shop.pixel_id, stranger, val="99", oid="o-2")

    assert conversions(await totals(client, shown.shop)) == (0, 0, 0)


async def test_a_product_view_after_a_click_is_no_conversion(
    client: httpx.AsyncClient, shown: Shown
) -> None:
    await shown.click(client)

    response = await fire_pixel(client, shown.shop.pixel_id, shown.uid, ev="view", sku="B-1")

    assert response.status_code == 200
    assert conversions(await totals(client, shown.shop)) == (0, 0, 0)


async def test_a_purchase_in_another_currency_than_the_advertisers_adds_no_revenue(
    client: httpx.AsyncClient, shown: Shown
) -> None:
    await client.patch(
        f"/v1/advertisers/{shown.shop.advertiser_id}", json={"currency": "EUR"}, headers=ADMIN
    )
    await shown.click(client)

    await purchase(client, shown.shop.pixel_id, shown.uid, oid="o-usd", val="50", cur="USD")
    await purchase(client, shown.shop.pixel_id, shown.uid, oid="o-eur", val="20", cur="EUR")

    assert conversions(await totals(client, shown.shop)) == (2, 0, 20)


# ---- server-to-server --------------------------------------------------------------------


async def test_a_server_to_server_purchase_is_attributed(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    await shown.click(client)
    clock.advance(DAY)

    response = await post_events(
        client, shown.shop, clock, server_purchase(clock, "order-9", cookie=shown.uid)
    )

    assert response.json()["accepted"] == 1
    assert conversions(await totals(client, shown.shop)) == (1, 0, 42.5)


async def test_a_server_to_server_event_id_sent_twice_counts_once(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    await shown.click(client)
    clock.advance(HOUR)
    event = server_purchase(clock, "order-9", cookie=shown.uid)

    first = await post_events(client, shown.shop, clock, event)
    again = await post_events(client, shown.shop, clock, event, event)

    assert first.json()["accepted"] == 1
    assert again.json()["duplicates"] == 2
    assert conversions(await totals(client, shown.shop)) == (1, 0, 42.5)


async def test_an_event_naming_several_identifiers_is_one_conversion(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    email = "a" * 64
    await post_events(client, shown.shop, clock, server_purchase(clock, "order-1", email=email))
    email_ad = (
        await decide(client, shown.shop.api_key, None, user={"id": email, "namespace": "email"})
    ).json()["decisions"]["feed-top"]
    await shown.click(client)
    await client.get(urlsplit(email_ad["click_url"]).path)  # the same person, by e-mail
    clock.advance(HOUR)

    response = await post_events(
        client, shown.shop, clock, server_purchase(clock, "order-9", cookie=shown.uid, email=email)
    )

    assert response.json()["accepted"] == 1
    assert conversions(await totals(client, shown.shop)) == (1, 0, 42.5)


async def test_a_server_to_server_purchase_made_before_the_click_is_no_conversion(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    event = server_purchase(clock, "order-9", cookie=shown.uid) | {"ts": int(clock.now()) - HOUR}
    await shown.click(client)

    await post_events(client, shown.shop, clock, event)

    # The ad was seen at the fixture's "now", an hour after this purchase: nothing to credit.
    assert conversions(await totals(client, shown.shop)) == (0, 0, 0)


# ---- the windows' settings ---------------------------------------------------------------


async def test_new_advertisers_get_a_seven_day_click_and_one_day_view_window(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/advertisers", json={"name": "Books", "domain": "books.example.com"}, headers=ADMIN
    )

    assert (response.json()["click_window_days"], response.json()["view_window_days"]) == (7, 1)
    assert response.json()["currency"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"click_window_days": 31}, "click_window_days"),
        ({"view_window_days": -1}, "view_window_days"),
        ({"click_window_days": "a week"}, "click_window_days"),
        ({"currency": "euro"}, "currency"),
    ],
)
async def test_windows_and_currency_are_validated(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/v1/advertisers",
        json={"name": "Books", "domain": "books.example.com", **body},
        headers=ADMIN,
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


# ---- cost --------------------------------------------------------------------------------


async def test_an_attributed_pixel_purchase_still_costs_exactly_one_redis_round_trip(
    client: httpx.AsyncClient, shown: Shown, redis: Redis
) -> None:
    """As tests/routes/test_pixel.py counts it: MONITOR shows every command a client sends;
    those a script runs inside Redis carry a "lua" source and are not round trips."""
    await shown.click(client)

    sent = await commands_sent(redis, lambda: buy(client, shown, "order-2"))

    assert command_names(sent) == ["EVALSHA"]
    assert conversions(await totals(client, shown.shop)) == (1, 0, 30)


async def test_conversions_are_counted_in_the_metrics_by_kind(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    clock.advance(HOUR)
    await buy(client, shown, "order-2")  # seen, not clicked: view-through
    await shown.click(client)
    await buy(client, shown, "order-3")

    families = text_string_to_metric_families((await client.get("/metrics")).text)
    counted = {
        sample.labels["kind"]: sample.value
        for family in families
        if family.name == "retarget_conversions"
        for sample in family.samples
        if sample.name == "retarget_conversions_total"
    }
    assert counted == {"click": 1.0, "view": 1.0}


async def test_a_users_export_shows_the_last_click_and_view_kept_for_attribution(
    client: httpx.AsyncClient, shown: Shown, clock: FrozenClock
) -> None:
    clock.advance(HOUR)
    await shown.click(client)

    exported = (await client.get(f"/v1/users/cookie/{shown.uid}", headers=ADMIN)).json()

    touch = {
        "campaign_id": shown.ad["campaign_id"],
        "creative_id": shown.ad["creative_id"],
        "publisher_id": shown.shop.publisher_id,
        "site_category": "social",
    }
    assert exported["last_views"] == {shown.shop.advertiser_id: {"ts": T0, **touch}}
    assert exported["last_clicks"] == {shown.shop.advertiser_id: {"ts": T0 + HOUR, **touch}}
