"""XSS payloads in every parameter of every public endpoint: escaped or refused, never live.

"Live" means a response a browser would run: ``text/html``, ``application/javascript`` or
XML (a VAST document opened directly) with the payload intact in its body. JSON errors may
quote input (browsers do not render ``application/json``), and every answer here also gets
``X-Content-Type-Options: nosniff`` checked where the service promises it.
"""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from retarget.users import COOKIE_NAME
from tests.helpers import (
    ADMIN,
    Shop,
    banner,
    bearer,
    create_campaign,
    decide,
    native,
    open_shop,
    purchase,
    video,
)

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
    "</script><script>alert(1)</script>",
    "javascript:alert(1)",
    "</title><script>alert(1)</script>",
    "<!--<script>alert(1)//-->",
    "]]><script>alert(1)</script>",
    "\u2028alert(1)//",
]
MARKUP_TYPES = ("text/html", "application/xml", "text/xml")
SCRIPT_TYPES = ("application/javascript", "text/javascript")
# A javascript: (or data:/vbscript:) URL where a browser would follow or load it.
_LIVE_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*(?:javascript|data|vbscript):""", re.I)


def assert_not_live(response: httpx.Response, payload: str) -> None:
    """The payload is nowhere a browser would run it: not intact in markup when it holds
    markup characters, never as a followed URL, never intact in a script; not in a header."""
    assert response.status_code < 500, response.text
    content_type = response.headers.get("content-type", "")
    text = response.text
    if content_type.startswith(MARKUP_TYPES):
        if any(c in payload for c in "<>\"'"):
            assert payload not in text, (response.request.url, content_type)
        assert not _LIVE_URL.search(text), (response.request.url, text)
    if content_type.startswith(SCRIPT_TYPES):
        assert payload not in text, (response.request.url, content_type)
    for name, value in response.headers.items():
        if name != "location" or not value.startswith("https://testserver/"):
            assert payload not in value, (name, value)


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> Shop:
    return await open_shop(client)


# ---- query parameters of the public endpoints ------------------------------------------


async def test_pixel_parameters_carrying_payloads_answer_a_gif(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    for payload in PAYLOADS:
        for name in ("ev", "sku", "pn", "cat", "val", "cur", "oid", "unknown"):
            response = await client.get(f"/px/{shop.pixel_id}.gif", params={name: payload})

            assert response.headers["content-type"] == "image/gif"
            assert_not_live(response, payload)
        # A GIF with a 404 for an unknown pixel id; a JSON 404 when the "id" holds a slash.
        assert_not_live(await client.get(f"/px/{payload}.gif"), payload)


@pytest.mark.parametrize("path", ["/v1/ad", "/v1/ad.js", "/v1/vast"])
async def test_tag_parameters_carrying_payloads_are_refused_or_escaped(
    client: httpx.AsyncClient, shop: Shop, path: str
) -> None:
    valid = {"pub": shop.publisher_id, "placement": "feed-top"}
    for payload in PAYLOADS:
        for name in ("pub", "placement", "container", "gdpr", "gdpr_consent", "unknown"):
            response = await client.get(path, params={**valid, name: payload})

            assert_not_live(response, payload)


async def test_decision_body_fields_carrying_payloads_answer_json(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    for payload in PAYLOADS:
        bodies: list[dict[str, Any]] = [
            {"user": {"id": payload, "namespace": "cookie"}, "placements": [{"id": "feed-top"}]},
            {"user": {"id": "x", "namespace": payload}, "placements": [{"id": "feed-top"}]},
            {"user": {}, "placements": [{"id": payload}]},
            {"user": {}, "placements": [{"id": "feed-top"}], "consent": {"tcf": payload}},
            {"user": {}, "placements": [{"id": "feed-top"}], "site": {"page": payload}},
            {payload: 1, "user": {}, "placements": [{"id": "feed-top"}]},
        ]
        for body in bodies:
            response = await client.post("/v1/decisions", json=body, headers=bearer(shop.api_key))

            assert response.headers["content-type"] == "application/json"
            assert_not_live(response, payload)


async def test_tracking_and_unknown_paths_carrying_payloads_are_refused(
    client: httpx.AsyncClient,
) -> None:
    for payload, prefix in itertools.product(PAYLOADS, ("/t/click/", "/t/imp/", "/", "/v1/")):
        response = await client.get(prefix + payload)

        # A trailing slash (a payload ending in "/") gets Starlette's redirect to the same
        # path without it, on our own host; anything else is refused.
        location = response.headers.get("location", "https://testserver/")
        assert 400 <= response.status_code < 500 or response.status_code == 307
        assert location.startswith("https://testserver/")
        assert_not_live(response, payload)
        if response.headers.get("content-type") == "application/json":
            assert response.headers["x-content-type-options"] == "nosniff"


# ---- advertiser text that reaches rendered markup --------------------------------------


async def test_javascript_urls_are_refused_for_every_url_of_a_creative(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    for creative in (
        banner(landing_url="javascript:alert(1)"),
        banner(image_url="javascript:alert(1)"),
        native(image_url="javascript:alert(1)//https://x"),
        video(media_url="JaVaScRiPt:alert(1)"),
        banner(landing_url="data:text/html,<script>alert(1)</script>"),
    ):
        response = await client.post(
            "/v1/campaigns",
            json={
                "advertiser_id": shop.advertiser_id,
                "name": "c",
                "audience_ids": [shop.audience_id],
                "bid_cpm": 1,
                "creatives": [creative],
            },
            headers=ADMIN,
        )

        assert response.status_code == 422, creative
        assert response.json()["error"]["field"].startswith("creatives.0.")


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_creative_text_with_payloads_is_escaped_in_the_ad_document(
    client: httpx.AsyncClient, shop: Shop, payload: str
) -> None:
    await create_campaign(
        client,
        shop.advertiser_id,
        [shop.audience_id],
        name=payload,
        creatives=[
            native(
                name=payload,
                title=payload,
                body=payload,
                call_to_action=payload[:40],
                image_url='https://books.example.com/a.png?q="><svg/onload=alert(1)>',
            )
        ],
    )
    uid = await purchase(client, shop.pixel_id)

    response = await client.get(
        "/v1/ad",
        params={"pub": shop.publisher_id, "placement": "sidebar"},
        headers={"Cookie": f"{COOKIE_NAME}={uid}"},
    )

    assert response.headers["content-type"].startswith("text/html")
    assert 'class="card"' in response.text, "no ad was rendered"
    assert_not_live(response, payload)
    assert_not_live(response, '"><svg/onload=alert(1)>')
    assert "<script" not in response.text.lower()


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_a_product_name_from_the_pixel_is_escaped_where_a_macro_shows_it(
    client: httpx.AsyncClient, shop: Shop, payload: str
) -> None:
    await create_campaign(
        client,
        shop.advertiser_id,
        [shop.audience_id],
        creatives=[banner(alt_text="Still thinking about {product}?")],
    )
    # The shopper's browser sends the pixel: anyone can put anything in pn.
    uid = await purchase(client, shop.pixel_id, pn=payload)

    document = await client.get(
        "/v1/ad",
        params={"pub": shop.publisher_id, "placement": "feed-top"},
        headers={"Cookie": f"{COOKIE_NAME}={uid}"},
    )
    decision = await decide(client, shop.api_key, uid)

    assert "<img" in document.text, "no ad was rendered"
    assert_not_live(document, payload)
    assert decision.headers["content-type"] == "application/json"


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_video_creative_text_with_payloads_is_escaped_in_vast(
    client: httpx.AsyncClient, payload: str
) -> None:
    publisher = (
        await client.post(
            "/v1/publishers",
            json={
                "name": "Tube",
                "domain": "tube.example.net",
                "site_category": "video",
                "placements": [{"id": "preroll", "format": "video"}],
            },
            headers=ADMIN,
        )
    ).json()
    shop = await open_shop(client)
    await create_campaign(
        client,
        shop.advertiser_id,
        [shop.audience_id],
        site_categories=["video"],
        creatives=[video(name=payload, media_url="https://books.example.com/v.mp4?a=<b>&c='d'")],
    )
    uid = await purchase(client, shop.pixel_id)

    response = await client.get(
        "/v1/vast",
        params={"pub": publisher["id"], "placement": "preroll"},
        headers={"Cookie": f"{COOKIE_NAME}={uid}"},
    )

    assert "<MediaFile" in response.text, "no ad was rendered"
    assert_not_live(response, payload)


async def test_the_ad_tag_script_carries_no_advertiser_text(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    payload = "</script><script>alert(1)</script>"
    await create_campaign(
        client, shop.advertiser_id, [shop.audience_id], creatives=[banner(alt_text=payload)]
    )

    response = await client.get(
        "/v1/ad.js", params={"pub": shop.publisher_id, "placement": "feed-top"}
    )

    assert response.headers["content-type"].startswith("application/javascript")
    assert "</" not in response.text


async def test_a_click_goes_only_to_the_stored_landing_url_even_one_with_markup(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    landing = 'https://books.example.com/?q="><script>alert(1)</script>'
    await create_campaign(
        client, shop.advertiser_id, [shop.audience_id], creatives=[banner(landing_url=landing)]
    )
    uid = await purchase(client, shop.pixel_id)
    ad = (await decide(client, shop.api_key, uid)).json()["decisions"]["feed-top"]

    response = await client.get(urlsplit(ad["click_url"]).path)

    assert response.status_code == 302
    assert unquote(response.headers["location"]) == landing  # percent-encoded by Starlette
    assert "<script" not in response.text
