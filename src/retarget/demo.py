"""The demo: a coffee shop, three publishers and a "come back and buy again" campaign.

``retarget demo`` (or ``retarget serve --demo``, which ``make run`` uses) seeds it through the
service's own admin API, so the demo goes through the same validation as any client; seeding
is idempotent: everything is found again by name and reused, and the campaign's creatives
are rewritten to point at the URL the service is reached at. The ``/demo`` pages
(``routes/demo.py``) find the seeded objects in the catalog by the same names.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from retarget.advertisers import Advertiser
from retarget.catalog import Catalog
from retarget.publishers import Publisher

SHOP_NAME = "Demo Coffee Roasters"
SHOP_DOMAIN = "coffee.demo.localhost"
AUDIENCE_NAME = "demo: bought anything in the last 30 days"
CAMPAIGN_NAME = "demo: come back and buy again"
BANNER_TEXT = "Still thinking about {product}? Come back and buy again"
CURRENCY = "EUR"


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    name: str
    category: str
    price: Decimal
    blurb: str

    @property
    def image_path(self) -> str:
        return f"/static/demo/{self.sku}.svg"


PRODUCTS = (
    Product("moka-pot", "Moka Pot", "coffee-gear", Decimal("34.90"), "Six cups, stovetop."),
    Product("burr-grinder", "Burr Grinder", "coffee-gear", Decimal("89.00"), "Conical steel."),
    Product("espresso-beans", "Espresso Beans 1 kg", "coffee", Decimal("24.50"), "Dark roast."),
)
PRODUCTS_BY_SKU = {product.sku: product for product in PRODUCTS}


@dataclass(frozen=True, slots=True)
class DemoPublisher:
    """A publisher page of the demo: ``/demo/<slug>``."""

    slug: str
    name: str
    site_category: str
    placements: tuple[dict[str, Any], ...]
    headline: str


PUBLISHERS = (
    DemoPublisher(
        "social",
        "Demo Social",
        "social",
        (
            {"id": "feed", "format": "native"},
            {"id": "sidebar", "format": "banner", "sizes": [[300, 250]]},
        ),
        "What your friends are up to",
    ),
    DemoPublisher(
        "games",
        "Demo Games",
        "games",
        ({"id": "board", "format": "banner", "sizes": [[300, 250]]},),
        "Puzzle of the day",
    ),
    DemoPublisher(
        "video",
        "Demo Video",
        "video",
        ({"id": "preroll", "format": "video"},),
        "Today's clip",
    ),
)
PUBLISHERS_BY_SLUG = {publisher.slug: publisher for publisher in PUBLISHERS}


def publisher_domain(slug: str) -> str:
    return f"{slug}.demo.localhost"


def audience_body() -> dict[str, Any]:
    # delay_days 0: the demo retargets at once; a real shop would wait a few days.
    return {"name": AUDIENCE_NAME, "event": "purchase", "membership_days": 30, "delay_days": 0}


def creatives(base_url: str) -> list[dict[str, Any]]:
    """The campaign's creatives, every URL on the service's own origin (``base_url``)."""
    landing = f"{base_url}/demo/shop?utm_source=retarget"
    return [
        {
            "id": "demo-banner",
            "name": "Come back banner",
            "type": "banner",
            "width": 300,
            "height": 250,
            "image_url": f"{base_url}/static/demo/banner-300x250.svg",
            "alt_text": BANNER_TEXT,
            "landing_url": landing,
        },
        {
            "id": "demo-native",
            "name": "Come back card",
            "type": "native",
            "title": "Still thinking about {product|our coffee}?",
            "body": "Come back and buy again: still in stock, still freshly roasted.",
            "image_url": f"{base_url}/static/demo/cup.svg",
            "call_to_action": "Buy again",
            "landing_url": landing,
        },
        {
            "id": "demo-video",
            "name": "Come back pre-roll",
            "type": "video",
            "media_url": f"{base_url}/static/demo/ad.webm",
            "mime_type": "video/webm",
            "duration_seconds": 3,
            "width": 640,
            "height": 360,
            "landing_url": landing,
        },
    ]


def campaign_body(advertiser_id: str, audience_id: str, base_url: str) -> dict[str, Any]:
    return {
        "advertiser_id": advertiser_id,
        "name": CAMPAIGN_NAME,
        "audience_ids": [audience_id],
        "bid_cpm": 2.0,
        # Generous for a demo, but still a cap: one person sees at most 30 ads an hour.
        "frequency_caps": [{"impressions": 30, "seconds": 3600}],
        "budget": {"daily_impressions": 10_000, "pacing": "asap"},
        "creatives": creatives(base_url),
    }


def publisher_body(publisher: DemoPublisher) -> dict[str, Any]:
    return {
        "name": publisher.name,
        "domain": publisher_domain(publisher.slug),
        "site_category": publisher.site_category,
        "placements": list(publisher.placements),
    }


# ---- what the /demo pages need, found in the catalog -----------------------------------


@dataclass(frozen=True, slots=True)
class DemoSite:
    shop: Advertiser
    publishers: dict[str, Publisher]  # slug -> the seeded publisher


def find_demo(catalog: Catalog) -> DemoSite | None:
    """The seeded demo in this catalog, or None when ``retarget demo`` has not run."""
    shop = next((a for a in catalog.advertisers.values() if a.name == SHOP_NAME), None)
    if shop is None:
        return None
    by_name = {p.name: p for p in catalog.publishers.values()}
    found = {d.slug: by_name[d.name] for d in PUBLISHERS if d.name in by_name}
    if len(found) != len(PUBLISHERS):
        return None
    return DemoSite(shop=shop, publishers=found)


def new_order_id() -> str:
    return "demo-" + secrets.token_hex(6)


def pixel_url(pixel_id: str, product: Product, order_id: str) -> str:
    """The confirmation page's purchase pixel (relative: the demo shop is on our origin)."""
    query = urlencode(
        {
            "ev": "purchase",
            "oid": order_id,
            "val": str(product.price),
            "cur": CURRENCY,
            "sku": product.sku,
            "pn": product.name,
            "cat": product.category,
        }
    )
    return f"/px/{quote(pixel_id)}.gif?{query}"


# ---- seeding through the admin API ------------------------------------------------------


class AdminApiError(RuntimeError):
    """The admin API refused a seeding request; the message names the request."""


class AdminApi:
    """A few admin API calls over the standard library (no client library at run time)."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def call(
        self, method: str, path: str, body: object = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (http(s) base URL from our settings)
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {token or self._token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else None
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def expect(self, status: int, method: str, path: str, body: object = None) -> Any:
        got, answer = self.call(method, path, body)
        if got != status:
            raise AdminApiError(f"{method} {path} answered {got}: {answer}")
        return answer


@dataclass(frozen=True, slots=True)
class Seeded:
    advertiser_id: str
    audience_id: str
    campaign_id: str
    publisher_ids: dict[str, str]
    advertiser_key: str


def seed(api: AdminApi, known_key: str | None = None) -> Seeded:
    """Create what is missing of the demo, reuse what exists; return the ids and a key of
    the shop for the dashboard (``known_key`` again while it still works)."""
    advertisers = api.expect(200, "GET", "/v1/advertisers")["advertisers"]
    shop = next((a for a in advertisers if a["name"] == SHOP_NAME), None)
    if shop is None:
        body = {"name": SHOP_NAME, "domain": SHOP_DOMAIN}
        shop = api.expect(201, "POST", "/v1/advertisers", body)
    shop_id = shop["id"]

    audiences = api.expect(200, "GET", f"/v1/advertisers/{shop_id}/audiences")["audiences"]
    audience = next((a for a in audiences if a["name"] == AUDIENCE_NAME), None)
    if audience is None:
        audience = api.expect(201, "POST", f"/v1/advertisers/{shop_id}/audiences", audience_body())

    campaigns = api.expect(200, "GET", f"/v1/campaigns?advertiser_id={quote(shop_id)}")
    campaign = next((c for c in campaigns["campaigns"] if c["name"] == CAMPAIGN_NAME), None)
    if campaign is None:
        body = campaign_body(shop_id, audience["id"], api.base_url)
        campaign = api.expect(201, "POST", "/v1/campaigns", body)
    else:
        # The service may be reached at another URL than last time: point the creatives
        # (landing page, images, video) at this one.
        for creative in creatives(api.base_url):
            path = f"/v1/campaigns/{campaign['id']}/creatives/{creative['id']}"
            api.expect(200, "PUT", path, creative)

    existing = {p["name"]: p for p in api.expect(200, "GET", "/v1/publishers")["publishers"]}
    publisher_ids = {}
    for publisher in PUBLISHERS:
        found = existing.get(publisher.name)
        if found is None:
            found = api.expect(201, "POST", "/v1/publishers", publisher_body(publisher))
        publisher_ids[publisher.slug] = found["id"]

    key = known_key
    if key is None or api.call("GET", f"/v1/advertisers/{shop_id}", token=key)[0] != 200:
        key = api.expect(201, "POST", f"/v1/advertisers/{shop_id}/keys")["api_key"]
    return Seeded(
        advertiser_id=shop_id,
        audience_id=audience["id"],
        campaign_id=campaign["id"],
        publisher_ids=publisher_ids,
        advertiser_key=key,
    )


def demo_urls(base_url: str) -> list[str]:
    return (
        [f"{base_url}/demo/shop"]
        + [f"{base_url}/demo/{p.slug}" for p in PUBLISHERS]
        + [f"{base_url}/dashboard"]
    )
