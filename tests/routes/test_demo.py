"""The demo pages: a shop whose confirmation page fires the pixel, publishers with ad tags."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from retarget import demo
from tests.helpers import ADMIN, decide

BASE = "https://testserver"


@dataclass(frozen=True)
class SeededDemo:
    advertiser_id: str
    pixel_id: str
    publishers: dict[str, dict[str, object]]


async def seed(client: httpx.AsyncClient) -> SeededDemo:
    """The demo's objects, created from the same bodies ``retarget demo`` sends."""
    shop = await client.post(
        "/v1/advertisers", json={"name": demo.SHOP_NAME, "domain": demo.SHOP_DOMAIN}, headers=ADMIN
    )
    shop_id = shop.json()["id"]
    audience = await client.post(
        f"/v1/advertisers/{shop_id}/audiences", json=demo.audience_body(), headers=ADMIN
    )
    body = demo.campaign_body(shop_id, audience.json()["id"], BASE)
    assert (await client.post("/v1/campaigns", json=body, headers=ADMIN)).status_code == 201
    publishers = {}
    for publisher in demo.PUBLISHERS:
        created = await client.post(
            "/v1/publishers", json=demo.publisher_body(publisher), headers=ADMIN
        )
        assert created.status_code == 201, created.text
        publishers[publisher.slug] = created.json()
    return SeededDemo(shop_id, shop.json()["pixel_id"], publishers)


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> SeededDemo:
    return await seed(client)


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser would parse them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


@pytest.mark.parametrize("path", ["/demo/shop", "/demo/social", "/demo/video"])
async def test_demo_pages_say_how_to_seed_the_demo_before_it_is_seeded(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "demo"
    assert "retarget demo" in response.json()["error"]["message"]


async def test_the_shop_offers_every_product_with_a_buy_button(
    client: httpx.AsyncClient, seeded: SeededDemo
) -> None:
    response = await client.get("/demo/shop")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for product in demo.PRODUCTS:
        assert f"Buy {product.name}</button>" in response.text
    skus = [i["value"] for i in Tags(response.text).all("input") if i.get("name") == "sku"]
    assert skus == [product.sku for product in demo.PRODUCTS]


async def test_checkout_sends_the_buyer_to_a_confirmation_with_a_new_order_id(
    client: httpx.AsyncClient, seeded: SeededDemo
) -> None:
    first = await client.get("/demo/shop/checkout", params={"sku": "moka-pot"})
    second = await client.get("/demo/shop/checkout", params={"sku": "moka-pot"})
    assert first.status_code == second.status_code == 303
    first_query = parse_qs(urlsplit(first.headers["location"]).query)
    second_query = parse_qs(urlsplit(second.headers["location"]).query)
    assert urlsplit(first.headers["location"]).path == "/demo/shop/thanks"
    assert first_query["sku"] == ["moka-pot"]
    assert first_query["oid"] != second_query["oid"]


async def test_the_confirmation_page_fires_the_purchase_pixel_with_the_order(
    client: httpx.AsyncClient, seeded: SeededDemo
) -> None:
    response = await client.get(
        "/demo/shop/thanks", params={"sku": "burr-grinder", "oid": "demo-0123456789ab"}
    )
    assert response.status_code == 200
    pixels = [i["src"] for i in Tags(response.text).all("img") if "/px/" in (i["src"] or "")]
    assert len(pixels) == 1
    pixel = urlsplit(pixels[0])
    assert pixel.path == f"/px/{seeded.pixel_id}.gif"
    assert parse_qs(pixel.query) == {
        "ev": ["purchase"],
        "oid": ["demo-0123456789ab"],
        "val": ["89.00"],
        "cur": ["EUR"],
        "sku": ["burr-grinder"],
        "pn": ["Burr Grinder"],
        "cat": ["coffee-gear"],
    }


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"sku": "teapot", "oid": "demo-0123456789ab"}, 404, "sku"),
        ({"sku": "moka-pot", "oid": "<script>"}, 422, "oid"),
        ({"sku": "Moka Pot!", "oid": "demo-0123456789ab"}, 422, "sku"),
    ],
)
async def test_a_bad_confirmation_link_is_an_error_naming_the_field(
    client: httpx.AsyncClient, seeded: SeededDemo, params: dict[str, str], status: int, field: str
) -> None:
    response = await client.get("/demo/shop/thanks", params=params)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("slug", ["social", "games"])
async def test_publisher_pages_carry_the_ad_tag_of_each_placement(
    client: httpx.AsyncClient, seeded: SeededDemo, slug: str
) -> None:
    response = await client.get(f"/demo/{slug}")
    assert response.status_code == 200
    publisher = seeded.publishers[slug]
    tags = [urlsplit(s["src"] or "") for s in Tags(response.text).all("script")]
    placements = [p["id"] for p in publisher["placements"]]  # type: ignore[index]
    assert [t.path for t in tags] == ["/v1/ad.js"] * len(placements)
    assert [parse_qs(t.query) for t in tags] == [
        {"pub": [publisher["id"]], "placement": [p], "container": [f"ad-{p}"]} for p in placements
    ]
    containers = [d["id"] for d in Tags(response.text).all("div") if d.get("class") == "ad"]
    assert containers == [f"ad-{p}" for p in placements]


async def test_the_video_page_points_its_player_at_the_video_publishers_vast(
    client: httpx.AsyncClient, seeded: SeededDemo
) -> None:
    response = await client.get("/demo/video")
    player = next(d for d in Tags(response.text).all("div") if d.get("id") == "player")
    vast = urlsplit(player["data-vast-url"] or "")
    assert vast.path == "/v1/vast"
    assert parse_qs(vast.query) == {
        "pub": [seeded.publishers["video"]["id"]],
        "placement": ["preroll"],
    }
    scripts = [s["src"] for s in Tags(response.text).all("script")]
    assert scripts == ["/static/demo/player.js"]
    assert (await client.get("/static/demo/player.js")).status_code == 200


async def test_an_unknown_demo_page_is_a_404(client: httpx.AsyncClient, seeded: SeededDemo) -> None:
    response = await client.get("/demo/news")
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "slug"


@pytest.mark.parametrize("path", ["/demo", "/demo/shop", "/demo/social", "/demo/video"])
async def test_demo_pages_allow_scripts_and_frames_from_our_own_origin_only(
    client: httpx.AsyncClient, seeded: SeededDemo, path: str
) -> None:
    response = await client.get(path)
    policy = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["frame-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "<script>" not in response.text  # no inline script anywhere


async def test_a_click_on_the_demo_ad_lands_on_the_demo_shop_of_our_own_origin(
    client: httpx.AsyncClient, seeded: SeededDemo
) -> None:
    pixel = await client.get(
        f"/px/{seeded.pixel_id}.gif", params={"ev": "purchase", "oid": "o1", "pn": "Moka Pot"}
    )
    uid = pixel.cookies["rt_uid"]
    social_key = str(seeded.publishers["social"]["api_key"])
    answer = await decide(client, social_key, uid, ("sidebar",))
    ad = answer.json()["decisions"]["sidebar"]
    assert ad["fields"]["alt_text"] == "Still thinking about Moka Pot? Come back and buy again"
    click = await client.get(urlsplit(ad["click_url"]).path)
    assert click.status_code == 302
    assert click.headers["location"] == f"{BASE}/demo/shop?utm_source=retarget"


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/demo/ad.webm", "video/webm"),
        ("/static/demo/banner-300x250.svg", "image/svg+xml"),
        ("/static/vendor/chart.js-4.6.1/chart.umd.js", "javascript"),
    ],
)
async def test_demo_assets_are_served_from_our_own_origin(
    client: httpx.AsyncClient, path: str, content_type: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert content_type in response.headers["content-type"]
    assert len(response.content) > 100
