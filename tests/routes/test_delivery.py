"""Browser and video delivery, as a publisher's page and a video player use it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import xmlschema

from retarget.privacy import OPT_OUT_COOKIE
from retarget.users import COOKIE_NAME
from tests.helpers import (
    banner,
    create_advertiser,
    create_audience,
    create_campaign,
    create_publisher,
    fire_pixel,
    video,
)

# In CI the repository is cloned with shared/ beside it.
VAST_XSD = Path(__file__).resolve().parents[2] / ".." / "shared" / "standards" / "vast"
NS = {"v": "http://www.iab.com/VAST"}
XSS = "<script>alert(1)</script>"
PAYLOADS = [XSS, '"><img src=x onerror=alert(1)>', "</script><!--", "javascript:alert(1)"]
PATHS = ("/v1/ad", "/v1/ad.js", "/v1/vast")
MEDIA_URL = "https://books.example.com/ads/trailer.mp4"


@cache
def vast_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(VAST_XSD / "vast_4.2.xsd"))


def as_browser(uid: str | None, **headers: str) -> dict[str, str]:
    """Request headers of a browser that carries ``uid`` as its rt_uid cookie (or none)."""
    if uid is not None:
        headers["Cookie"] = f"{COOKIE_NAME}={uid}" + headers.pop("Cookie", "")
    return headers


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> dict[str, Any]:
    """A book shop retargeting its buyers on a games site with a banner and a video slot."""
    advertiser = await create_advertiser(client)
    buyers = await create_audience(client, advertiser["id"], categories=["books"])
    publisher = await create_publisher(
        client,
        placements=[
            {"id": "home-top", "format": "banner", "sizes": [[300, 250]]},
            {"id": "preroll", "format": "video"},
        ],
    )
    campaign = await create_campaign(
        client,
        advertiser["id"],
        [buyers["id"]],
        creatives=[banner(), video()],
    )
    return {"advertiser": advertiser, "publisher": publisher, "campaign": campaign}


async def buyer(client: httpx.AsyncClient, shop: dict[str, Any], product: str = "Dune") -> str:
    """The rt_uid of a browser that just bought a book called ``product``."""
    hit = await fire_pixel(client, shop["advertiser"]["pixel_id"], cat="books", pn=product)
    client.cookies.clear()
    return hit.cookies[COOKIE_NAME]


async def get_ad(
    client: httpx.AsyncClient, shop: dict[str, Any], uid: str | None, **headers: str
) -> httpx.Response:
    params = {"pub": shop["publisher"]["id"], "placement": "home-top"}
    return await client.get("/v1/ad", params=params, headers=as_browser(uid, **headers))


async def get_vast(
    client: httpx.AsyncClient, shop: dict[str, Any], uid: str | None, **headers: str
) -> httpx.Response:
    params = {"pub": shop["publisher"]["id"], "placement": "preroll"}
    return await client.get("/v1/vast", params=params, headers=as_browser(uid, **headers))


def assert_valid_vast(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    vast_schema().validate(response.text)
    return ET.fromstring(response.content)  # noqa: S314 - our own output


# ---- GET /v1/ad ---------------------------------------------------------------------------


async def test_a_buyer_gets_the_banner_with_the_product_filled_in(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop, product="Dune")

    response = await get_ad(client, shop, uid)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "X-Retarget-No-Fill" not in response.headers
    document = response.text
    assert '<img src="https://books.example.com/ads/300x250.png"' in document
    assert 'alt="Still thinking about Dune?" width="300" height="250"' in document
    assert '<a href="https://testserver/t/click/' in document
    assert '<img src="https://testserver/t/imp/' in document


async def test_the_banner_links_to_a_click_url_that_reaches_the_landing_page(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop)
    document = (await get_ad(client, shop, uid)).text
    click_url = document.split('<a href="', 1)[1].split('"', 1)[0]

    response = await client.get(click_url)

    assert response.status_code == 302
    assert response.headers["location"] == "https://books.example.com/?utm_source=retarget"


async def test_the_ad_document_may_run_no_script_and_is_not_cached(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop)

    response = await get_ad(client, shop, uid)

    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_advertiser_text_is_escaped_in_the_ad_document(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    await create_campaign(
        client,
        shop["advertiser"]["id"],
        shop["campaign"]["audience_ids"],
        priority=10,
        creatives=[banner(alt_text=XSS)],
    )
    uid = await buyer(client, shop)

    response = await get_ad(client, shop, uid)

    assert response.status_code == 200
    assert "<script" not in response.text
    assert 'alt="&lt;script&gt;alert(1)&lt;/script&gt;"' in response.text


async def test_a_purchase_macro_is_escaped_too(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop, product='"><script>alert(1)</script>')

    response = await get_ad(client, shop, uid)

    assert "<script" not in response.text
    assert 'alt="Still thinking about &quot;&gt;&lt;script&gt;' in response.text


async def test_a_browser_without_a_cookie_gets_an_empty_document(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    response = await get_ad(client, shop, uid=None)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-retarget-no-fill"] == "no_user"
    assert "<body></body>" in response.text


async def test_a_malformed_cookie_is_no_user(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    response = await get_ad(client, shop, uid="not-an-id")

    assert response.status_code == 200
    assert response.headers["x-retarget-no-fill"] == "no_user"


async def test_global_privacy_control_means_no_personalised_ad(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop)

    response = await get_ad(client, shop, uid, **{"Sec-GPC": "1"})

    assert response.headers["x-retarget-no-fill"] == "no_consent"
    assert "<body></body>" in response.text


async def test_the_opt_out_cookie_means_no_personalised_ad(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop)

    response = await get_ad(client, shop, uid, Cookie=f"; {OPT_OUT_COOKIE}=1")

    assert response.headers["x-retarget-no-fill"] == "no_consent"
    assert "<body></body>" in response.text


async def test_gdpr_without_consent_means_no_personalised_ad(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop)
    params = {"pub": shop["publisher"]["id"], "placement": "home-top", "gdpr": "1"}

    response = await client.get("/v1/ad", params=params, headers=as_browser(uid))

    assert response.headers["x-retarget-no-fill"] == "no_consent"


async def test_an_unknown_publisher_is_a_json_404(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    response = await client.get("/v1/ad", params={"pub": "pub_nobody", "placement": "home-top"})

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["field"] == "pub"


async def test_an_unknown_placement_is_a_json_404(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    params = {"pub": shop["publisher"]["id"], "placement": "sidebar"}

    response = await client.get("/v1/ad", params=params)

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "placement"


async def test_a_video_placement_is_served_as_vast_not_html(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    params = {"pub": shop["publisher"]["id"], "placement": "preroll"}

    response = await client.get("/v1/ad", params=params)

    assert response.status_code == 422
    assert "/v1/vast" in response.json()["error"]["message"]


async def test_the_ad_needs_a_publisher_and_a_placement(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/ad", params={"placement": "home-top"})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "pub"


# ---- GET /v1/ad.js ------------------------------------------------------------------------


async def test_the_ad_tag_fills_its_container_with_the_ad_iframe(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    pub = shop["publisher"]["id"]
    params = {"pub": pub, "placement": "home-top", "container": "rt-top"}

    response = await client.get("/v1/ad.js", params=params)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/javascript"
    assert response.headers["x-content-type-options"] == "nosniff"
    script = response.text
    src = f"https://testserver/v1/ad?pub={pub}\\u0026placement=home-top"
    assert f'"src": "{src}"' in script
    assert '"width": "300", "height": "250"' in script
    assert '"container": "rt-top"' in script


async def test_the_ad_tag_passes_gdpr_consent_on_to_the_iframe(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    params = {
        "pub": shop["publisher"]["id"],
        "placement": "home-top",
        "gdpr": "1",
        "gdpr_consent": "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
    }

    response = await client.get("/v1/ad.js", params=params)

    assert "\\u0026gdpr=1\\u0026gdpr_consent=CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA" in (
        response.text
    )


async def test_the_ad_tag_carries_no_advertiser_text(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop)
    params = {"pub": shop["publisher"]["id"], "placement": "home-top"}

    response = await client.get("/v1/ad.js", params=params, headers=as_browser(uid))

    assert "Still thinking" not in response.text
    assert "books.example.com" not in response.text


# ---- GET /v1/vast -------------------------------------------------------------------------


async def test_a_buyer_gets_vast_that_validates_with_the_media_file_and_click_through(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop)

    response = await get_vast(client, shop, uid)

    root = assert_valid_vast(response)
    assert response.headers["cache-control"] == "no-store"
    inline = root.find("v:Ad/v:InLine", NS)
    assert inline is not None
    assert inline.findtext(".//v:MediaFile", namespaces=NS) == MEDIA_URL
    click_url = inline.findtext(".//v:ClickThrough", namespaces=NS)
    assert click_url is not None
    assert click_url.startswith("https://testserver/t/click/")
    impression = inline.findtext("v:Impression", namespaces=NS)
    assert impression is not None
    assert impression.startswith("https://testserver/t/imp/")
    assert inline.findtext(".//v:Duration", namespaces=NS) == "00:00:15"


async def test_the_vast_click_through_reaches_the_video_landing_page(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    uid = await buyer(client, shop)
    root = assert_valid_vast(await get_vast(client, shop, uid))
    click_url = root.findtext(".//v:ClickThrough", namespaces=NS)
    assert click_url is not None

    response = await client.get(click_url)

    assert response.status_code == 302
    assert response.headers["location"] == "https://books.example.com/trailer"


async def test_no_ad_is_an_empty_vast_that_validates(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    response = await get_vast(client, shop, uid=None)

    root = assert_valid_vast(response)
    assert len(root) == 0
    assert response.headers["x-retarget-no-fill"] == "no_user"


async def test_the_publishers_own_site_may_read_vast_with_credentials(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    origin = "https://www.games.example.net"

    response = await get_vast(client, shop, uid=None, Origin=origin)

    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_another_site_may_not_read_vast(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    response = await get_vast(client, shop, uid=None, Origin="https://games.example.net.evil.io")

    assert "access-control-allow-origin" not in response.headers


async def test_a_banner_placement_has_no_vast(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    params = {"pub": shop["publisher"]["id"], "placement": "home-top"}

    response = await client.get("/v1/vast", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"


# ---- hostile query parameters -------------------------------------------------------------


def hostile_params(shop: dict[str, Any], path: str, name: str, payload: str) -> dict[str, str]:
    placement = "preroll" if path == "/v1/vast" else "home-top"
    return {"pub": shop["publisher"]["id"], "placement": placement, name: payload}


@pytest.mark.parametrize(
    ("path", "name"),
    [
        *((path, name) for path in PATHS for name in ("pub", "placement", "gdpr", "gdpr_consent")),
        ("/v1/ad.js", "container"),
    ],
)
async def test_a_hostile_query_parameter_is_refused_as_json_naming_it(
    client: httpx.AsyncClient, shop: dict[str, Any], path: str, name: str
) -> None:
    for payload in PAYLOADS:
        response = await client.get(path, params=hostile_params(shop, path, name, payload))

        assert response.status_code == 422, payload
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["field"] == name
        assert payload not in response.text


@pytest.mark.parametrize("path", ["/v1/ad", "/v1/vast"])
async def test_a_parameter_the_path_does_not_take_is_ignored_not_echoed(
    client: httpx.AsyncClient, shop: dict[str, Any], path: str
) -> None:
    for payload in PAYLOADS:
        response = await client.get(path, params=hostile_params(shop, path, "container", payload))

        assert response.status_code == 200
        assert payload not in response.text
