"""``/dashboard``: sign in with an advertiser key, see campaigns and reports, sign out."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from retarget.dashboard import SESSION_COOKIE
from tests.helpers import (
    Shop,
    create_advertiser_key,
    create_campaign,
    decide,
    open_shop,
    purchase,
)


class Page(HTMLParser):
    """The tables' cells by table id, and the chart data block."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.chart_data: object = None
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_chart_data = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("id")
            self.tables[self._table or ""] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td":
            self._cell = []
        elif tag == "script" and found.get("id") == "chart-data":
            self._in_chart_data = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "script":
            self._in_chart_data = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_chart_data:
            self.chart_data = json.loads(data)

    def rows(self, table: str) -> list[list[str]]:
        return [row for row in self.tables[table] if row]


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(
        "/dashboard/sign-in",
        content=f"api_key={key}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def signed_in(client: httpx.AsyncClient, key: str) -> None:
    """Sign in, and make sure it worked (so a later assertion is about the page)."""
    response = await sign_in(client, key)
    assert response.status_code == 303, response.text


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> Shop:
    shop = await open_shop(client)
    await create_campaign(
        client,
        shop.advertiser_id,
        [shop.audience_id],
        name="Bring back <b>book</b> buyers",
        budget={"daily_impressions": 100, "pacing": "even"},
    )
    return shop


@pytest.fixture
async def advertiser_key(client: httpx.AsyncClient, shop: Shop) -> str:
    return await create_advertiser_key(client, shop.advertiser_id)


async def test_without_a_session_the_dashboard_is_a_sign_in_form(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard")
    assert response.status_code == 200
    assert '<form method="post" action="/dashboard/sign-in">' in response.text
    assert 'name="api_key"' in response.text


async def test_signing_in_sets_an_http_only_lax_session_cookie_without_the_key(
    client: httpx.AsyncClient, advertiser_key: str
) -> None:
    response = await sign_in(client, advertiser_key)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert advertiser_key not in cookie
    flags = {flag.strip().lower() for flag in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/dashboard"} <= flags


@pytest.mark.parametrize("key", ["rt_adv_not-a-key", "", "%3Cscript%3E", "x&a=1&b=2&c=3&d=4"])
async def test_a_wrong_key_is_refused_with_the_form_again(
    client: httpx.AsyncClient, shop: Shop, key: str
) -> None:
    response = await sign_in(client, key)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "not an advertiser key" in response.text
    assert "<script>" not in response.text


async def test_a_publisher_key_does_not_open_the_dashboard(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    response = await sign_in(client, shop.api_key)
    assert response.status_code == 401


async def test_the_dashboard_shows_the_advertisers_campaigns_with_status_and_pacing(
    client: httpx.AsyncClient, advertiser_key: str
) -> None:
    await signed_in(client, advertiser_key)
    response = await client.get("/dashboard")
    assert response.status_code == 200
    page = Page(response.text)
    assert page.rows("campaigns") == [
        ["Bring back <b>book</b> buyers", "active", "even", "0 today of 100 (0%); 0 in total"]
    ]
    assert "<b>book</b>" not in response.text  # escaped, not markup


async def test_the_dashboard_counts_clicks_and_impressions_by_site_category_and_publisher(
    client: httpx.AsyncClient, shop: Shop, advertiser_key: str
) -> None:
    uid = await purchase(client, shop.pixel_id)
    ad = (await decide(client, shop.api_key, uid)).json()["decisions"]["feed-top"]
    assert (await client.get(urlsplit(ad["impression_url"]).path)).status_code == 200
    assert (await client.get(urlsplit(ad["click_url"]).path)).status_code == 302

    await signed_in(client, advertiser_key)
    page = Page((await client.get("/dashboard")).text)
    # site category, impressions, clicks, conversions, revenue, cost, ROAS
    assert page.rows("by-category") == [["social", "1", "1", "0", "0.00", "0.00", "0.00"]]
    assert page.rows("by-publisher")[0][:5] == ["Friends", "social", "1", "1", "0"]
    charts = page.chart_data
    assert isinstance(charts, dict)
    assert charts["by_category"]["labels"] == ["social"]
    assert charts["daily"]["clicks"][-1] == 1
    assert len(charts["daily"]["labels"]) == 7


async def test_the_date_range_picker_chooses_the_days(
    client: httpx.AsyncClient, advertiser_key: str
) -> None:
    await signed_in(client, advertiser_key)
    response = await client.get("/dashboard", params={"start": "2027-01-01", "end": "2027-01-15"})
    page = Page(response.text)
    assert page.chart_data["daily"]["labels"][0] == "2027-01-01"  # type: ignore[index]
    assert page.chart_data["daily"]["labels"][-1] == "2027-01-15"  # type: ignore[index]
    assert 'name="start" value="2027-01-01"' in response.text


@pytest.mark.parametrize(
    ("params", "field"),
    [({"start": "2027-01-15", "end": "2027-01-01"}, "end"), ({"start": "yesterday"}, "start")],
)
async def test_a_bad_date_range_is_an_error_naming_the_field(
    client: httpx.AsyncClient, advertiser_key: str, params: dict[str, str], field: str
) -> None:
    await signed_in(client, advertiser_key)
    response = await client.get("/dashboard", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


async def test_a_tampered_session_shows_the_sign_in_form(
    client: httpx.AsyncClient, advertiser_key: str
) -> None:
    await signed_in(client, advertiser_key)
    value = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, re.sub(r"\.[0-9a-f]{64}$", "." + "0" * 64, value))
    response = await client.get("/dashboard")
    assert 'action="/dashboard/sign-in"' in response.text


async def test_signing_out_ends_the_session(client: httpx.AsyncClient, advertiser_key: str) -> None:
    await signed_in(client, advertiser_key)
    response = await client.post("/dashboard/sign-out")
    assert response.status_code == 303
    assert SESSION_COOKIE not in client.cookies
    assert 'action="/dashboard/sign-in"' in (await client.get("/dashboard")).text


async def test_the_dashboard_loads_its_scripts_from_our_own_origin_only(
    client: httpx.AsyncClient, advertiser_key: str
) -> None:
    await signed_in(client, advertiser_key)
    response = await client.get("/dashboard")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    sources = re.findall(r'<script src="([^"]+)"', response.text)
    assert sources == ["/static/vendor/chart.js-4.6.1/chart.umd.js", "/static/dashboard.js"]
    for source in sources:
        assert (await client.get(source)).status_code == 200
