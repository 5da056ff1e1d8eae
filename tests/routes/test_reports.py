"""``GET /v1/reports``: an advertiser's figures, equal to the raw counters, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis

from retarget.clock import FrozenClock
from tests.conftest import T0
from tests.helpers import (
    ADMIN,
    Shop,
    bearer,
    create_advertiser,
    create_advertiser_key,
    create_campaign,
    decide,
    open_shop,
    purchase,
)

DAY = 86_400
DAY0, DAY1 = "2027-01-15", "2027-01-16"  # T0's UTC day and the next


@dataclass(frozen=True)
class Traffic:
    """The shop's campaign served three ads over two days: two shown, one clicked, and the
    clicker bought again (a conversion worth 19.99) on the second day."""

    shop: Shop
    campaign: dict[str, Any]


async def show(client: httpx.AsyncClient, shop: Shop, *, click: bool = False) -> str:
    """A new buyer is shown an ad (and clicks it); returns the buyer."""
    uid = await purchase(client, shop.pixel_id)
    ad = (await decide(client, shop.api_key, uid)).json()["decisions"]["feed-top"]
    assert ad is not None
    assert (await client.get(urlsplit(ad["impression_url"]).path)).status_code == 200
    if click:
        assert (await client.get(urlsplit(ad["click_url"]).path)).status_code == 302
    return uid


@pytest.fixture
async def traffic(client: httpx.AsyncClient, clock: FrozenClock) -> Traffic:
    shop = await open_shop(client)
    campaign = await create_campaign(client, shop.advertiser_id, [shop.audience_id], bid_cpm=2.5)
    clicker = await show(client, shop, click=True)
    uid = await purchase(client, shop.pixel_id)  # decided, never shown
    assert (await decide(client, shop.api_key, uid)).json()["decisions"]["feed-top"]
    clock.advance(DAY)
    await show(client, shop)
    await purchase(client, shop.pixel_id, clicker, oid="order-2", val="19.99")
    return Traffic(shop, campaign)


async def report(client: httpx.AsyncClient, headers: dict[str, str] = ADMIN, **params: Any):
    return await client.get("/v1/reports", params=params, headers=headers)


async def raw_counters(redis: Redis, *days: str) -> dict[str, int]:
    """Every ``{stats}:<day>`` counter of these days added up by metric, read directly."""
    sums: dict[str, int] = {}
    for day in days:
        for field, value in (await redis.hgetall("{stats}:" + day.replace("-", ""))).items():
            metric = field.decode().split("|")[0]
            sums[metric] = sums.get(metric, 0) + int(value)
    return sums


async def test_each_days_counters_are_kept_for_400_days(
    client: httpx.AsyncClient, traffic: Traffic, redis: Redis
) -> None:
    await report(client, advertiser_id=traffic.shop.advertiser_id, start=DAY0, end=DAY1)

    for day in (DAY0, DAY1):
        ttl = await redis.ttl("{stats}:" + day.replace("-", ""))
        assert 399 * DAY < ttl <= 400 * DAY, (day, ttl)


async def test_the_totals_equal_the_raw_counters(
    client: httpx.AsyncClient, traffic: Traffic, redis: Redis
) -> None:
    response = await report(client, advertiser_id=traffic.shop.advertiser_id, start=DAY0, end=DAY1)

    assert response.status_code == 200, response.text
    totals = response.json()["totals"]
    raw = await raw_counters(redis, DAY0, DAY1)
    assert raw["decisions"] == totals["decisions"] == 3
    assert raw["impressions"] == totals["impressions"] == 2
    assert raw["clicks"] == totals["clicks"] == 1
    assert raw["conversion_click"] == totals["conversions_click_through"] == 1
    assert "conversion_view" not in raw
    assert totals["conversions_view_through"] == 0
    assert raw["revenue_micros"] == totals["revenue"] * 1_000_000 == 19_990_000


async def test_without_group_by_the_report_is_one_row_of_totals_with_derived_figures(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    body = (
        await report(client, advertiser_id=traffic.shop.advertiser_id, start=DAY0, end=DAY1)
    ).json()

    assert body["rows"] == [body["totals"]]
    assert body["totals"]["cost"] == 2 * 2.5 / 1000
    assert body["totals"]["ctr"] == 0.5
    assert body["totals"]["conversions"] == 1
    assert body["totals"]["revenue"] == 19.99
    assert body["totals"]["roas"] == round(19.99 / 0.005, 6)
    assert body["totals"]["cost_per_conversion"] == 0.005
    assert body["totals"]["conversion_rate"] == 1.0
    assert (body["advertiser_id"], body["start"], body["end"], body["group_by"]) == (
        traffic.shop.advertiser_id,
        DAY0,
        DAY1,
        [],
    )


async def test_grouping_by_day_splits_the_totals_by_utc_day(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    body = (
        await report(
            client, advertiser_id=traffic.shop.advertiser_id, start=DAY0, end=DAY1, group_by="day"
        )
    ).json()

    assert [
        (r["day"], r["decisions"], r["impressions"], r["clicks"], r["conversions"])
        for r in body["rows"]
    ] == [(DAY0, 2, 1, 1, 0), (DAY1, 1, 1, 0, 1)]


async def test_group_by_combines_dimensions_given_repeated_or_comma_separated(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    shop, campaign = traffic.shop, traffic.campaign
    params = httpx.QueryParams(
        [
            ("advertiser_id", shop.advertiser_id),
            ("start", DAY0),
            ("end", DAY1),
            ("group_by", "campaign,site_category"),
            ("group_by", "publisher"),
            ("group_by", "creative"),
        ]
    )
    body = (await client.get("/v1/reports", params=params, headers=ADMIN)).json()

    assert body["group_by"] == ["campaign", "site_category", "publisher", "creative"]
    (row,) = body["rows"]
    assert row["campaign_id"] == campaign["id"]
    assert row["campaign_name"] == campaign["name"]
    assert row["site_category"] == "social"
    assert row["publisher_id"] == shop.publisher_id
    assert row["creative_id"] == campaign["creatives"][0]["id"]
    assert row["decisions"] == body["totals"]["decisions"] == 3
    assert "day" not in row


async def test_the_csv_report_has_the_same_rows_as_the_json_one(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    params = {
        "advertiser_id": traffic.shop.advertiser_id,
        "start": DAY0,
        "end": DAY1,
        "group_by": "day,campaign",
    }
    as_json = (await report(client, **params)).json()
    by_header = await report(client, {**ADMIN, "Accept": "text/csv"}, **params)
    by_param = await report(client, format="csv", **params)

    assert by_header.headers["content-type"].startswith("text/csv")
    assert by_header.text == by_param.text
    rows = list(csv.DictReader(io.StringIO(by_header.text)))
    assert list(rows[0])[:3] == ["day", "campaign_id", "campaign_name"]
    assert len(rows) == len(as_json["rows"]) == 2
    for from_csv, from_json in zip(rows, as_json["rows"], strict=True):
        assert from_csv == {k: "" if v is None else str(v) for k, v in from_json.items()}


async def test_a_range_outside_the_traffic_reports_zeros(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    body = (
        await report(
            client, advertiser_id=traffic.shop.advertiser_id, start="2026-01-01", end="2026-01-31"
        )
    ).json()

    assert body["totals"]["impressions"] == 0
    assert body["totals"]["ctr"] is None
    assert body["totals"]["cost_per_conversion"] is None  # no conversions: no denominator
    assert body["totals"]["roas"] is None


async def test_without_dates_the_report_covers_the_last_seven_days(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    body = (await report(client, advertiser_id=traffic.shop.advertiser_id)).json()

    assert (body["start"], body["end"]) == ("2027-01-10", DAY1)
    assert body["totals"]["decisions"] == 3


async def test_another_advertisers_figures_stay_out_of_the_report(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    other = await create_advertiser(client, name="Shoe Shop", domain="shoes.example.com")

    body = (await report(client, advertiser_id=other["id"], start=DAY0, end=DAY1)).json()

    assert body["totals"]["decisions"] == 0


# ---- who may read it ---------------------------------------------------------------------


async def test_an_advertiser_key_reads_its_own_report_without_naming_it(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    key = await create_advertiser_key(client, traffic.shop.advertiser_id)

    response = await report(client, bearer(key), start=DAY0, end=DAY1)

    assert response.status_code == 200
    assert response.json()["advertiser_id"] == traffic.shop.advertiser_id
    assert response.json()["totals"]["decisions"] == 3


async def test_an_advertiser_key_gets_403_for_another_advertisers_report(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    other = await create_advertiser(client, name="Shoe Shop", domain="shoes.example.com")
    key = await create_advertiser_key(client, other["id"])

    response = await report(client, bearer(key), advertiser_id=traffic.shop.advertiser_id)

    assert response.status_code == 403
    assert response.json()["error"]["field"] == "Authorization"


async def test_a_publisher_key_gets_no_report(client: httpx.AsyncClient, traffic: Traffic) -> None:
    response = await report(
        client, bearer(traffic.shop.api_key), advertiser_id=traffic.shop.advertiser_id
    )

    assert response.status_code == 403


async def test_without_a_key_there_is_no_report(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/reports", params={"advertiser_id": "adv_x"})

    assert response.status_code == 401


async def test_an_unknown_advertiser_is_404(client: httpx.AsyncClient) -> None:
    response = await report(client, advertiser_id="adv_000000000000")

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "advertiser_id"


# ---- bad parameters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2027-13-01"}, "start"),
        ({"end": "yesterday"}, "end"),
        ({"start": "2027-01-16", "end": "2027-01-15"}, "end"),
        ({"start": "2026-01-01", "end": "2027-02-05"}, "start"),  # 401 days
        ({"end": "0001-01-02"}, "end"),
        ({"group_by": "day,country"}, "group_by"),
        ({"group_by": "<script>"}, "group_by"),
        ({"format": "xml"}, "format"),
        ({}, "advertiser_id"),  # the admin must say whose report
    ],
)
async def test_bad_parameters_get_a_4xx_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    advertiser = await create_advertiser(client)
    if field != "advertiser_id":
        params = {"advertiser_id": advertiser["id"], **params}

    response = await report(client, **params)

    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["field"] == field


async def test_four_hundred_days_is_the_longest_report(client: httpx.AsyncClient) -> None:
    advertiser = await create_advertiser(client)

    response = await report(
        client, advertiser_id=advertiser["id"], start="2026-01-01", end="2027-02-04"
    )

    assert response.status_code == 200
    assert response.json()["totals"]["decisions"] == 0


assert T0 % DAY == 8 * 3600  # the fixture's now is 08:00 on DAY0


async def test_the_api_document_shows_a_report_example_in_json_and_csv(
    client: httpx.AsyncClient,
) -> None:
    operation = (await client.get("/openapi.json")).json()["paths"]["/v1/reports"]["get"]

    content = operation["responses"]["200"]["content"]
    assert set(content["application/json"]["example"]) >= {"rows", "totals", "group_by"}
    assert content["text/csv"]["example"].startswith("day,")
    assert {p["name"] for p in operation["parameters"]} >= {
        "advertiser_id",
        "start",
        "end",
        "group_by",
        "format",
    }
