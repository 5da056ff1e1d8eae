"""The shop the load test advertises for, built or found again through the admin API.

One advertiser named ``locust shop`` with two audiences (buyers, cart abandoners), three
campaigns (banners for buyers, banners for cart abandoners, a pre-roll for both) and three
publishers (a social feed, a games site, a video site). A later run finds the advertiser,
audiences and campaigns by name and reuses them; publishers are replaced, because a
publisher's key is shown only when it is created. Nothing here imports locust, so the setup
runs the same from the master, a local run or a plain script.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from retarget.signing import SIGNATURE_HEADER, sign

from .population import cookie_id

ADVERTISER = {"name": "locust shop", "domain": "shop.locust.example"}
LANDING = "https://shop.locust.example/"
CDN = "https://cdn.locust.example/"
S2S_BATCH = 1000  # the service's largest batch


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price: float


PRODUCTS = [
    Product("BK-0451", "Fahrenheit 451", "books", 9.9),
    Product("BK-1984", "Nineteen Eighty-Four", "books", 8.5),
    Product("BK-DUNE", "Dune", "books", 12.0),
    Product("EL-HP01", "Wireless headphones", "electronics", 89.0),
    Product("EL-KB02", "Mechanical keyboard", "electronics", 119.0),
    Product("HM-MUG1", "Enamel mug", "home", 14.5),
    Product("HM-LMP2", "Desk lamp", "home", 39.0),
    Product("SP-YOGA", "Yoga mat", "sports", 25.0),
]

AUDIENCES = {
    "buyers": {"name": "locust buyers", "event": "purchase", "membership_days": 30},
    "carts": {"name": "locust cart abandoners", "event": "cart", "membership_days": 7},
}


def _banner(width: int, height: int) -> dict[str, Any]:
    return {
        "type": "banner",
        "width": width,
        "height": height,
        "image_url": f"{CDN}{width}x{height}.png",
        "alt_text": "Still thinking about {product|our bestsellers}?",
        "landing_url": LANDING,
    }


def _campaigns(audience_ids: dict[str, str]) -> list[dict[str, Any]]:
    """The campaigns, keyed by their names. Caps are loose: Zipf's popular users would
    otherwise be capped within seconds and the run would show mostly no-fills."""
    banners = [_banner(300, 250), _banner(320, 50)]
    return [
        {
            "name": "locust buyers banners",
            "audience_ids": [audience_ids["buyers"]],
            "site_categories": ["social", "games"],
            "formats": ["banner"],
            "frequency_caps": [{"impressions": 30, "seconds": 3600}],
            "bid_cpm": 2.0,
            "creatives": banners,
        },
        {
            "name": "locust cart banners",
            "audience_ids": [audience_ids["carts"]],
            "exclude_audience_ids": [audience_ids["buyers"]],
            "site_categories": ["social", "games"],
            "formats": ["banner"],
            "frequency_caps": [{"impressions": 20, "seconds": 3600}],
            "bid_cpm": 3.0,
            "creatives": banners,
        },
        {
            "name": "locust pre-roll",
            "audience_ids": [audience_ids["buyers"], audience_ids["carts"]],
            "site_categories": ["video"],
            "formats": ["video"],
            "frequency_caps": [{"impressions": 10, "seconds": 3600}],
            "bid_cpm": 8.0,
            "creatives": [
                {
                    "type": "video",
                    "media_url": f"{CDN}preroll.mp4",
                    "mime_type": "video/mp4",
                    "duration_seconds": 15,
                    "width": 640,
                    "height": 360,
                    "landing_url": LANDING,
                }
            ],
        },
    ]


PUBLISHERS = {
    "social": {
        "name": "locust social",
        "domain": "social.locust.example",
        "site_category": "social",
        "placements": [
            {"id": "feed-top", "format": "banner", "sizes": [[300, 250]]},
            {"id": "feed-bottom", "format": "banner", "sizes": [[300, 250]]},
        ],
    },
    "games": {
        "name": "locust games",
        "domain": "games.locust.example",
        "site_category": "games",
        "placements": [{"id": "level-end", "format": "banner", "sizes": [[320, 50]]}],
    },
    "video": {
        "name": "locust video",
        "domain": "video.locust.example",
        "site_category": "video",
        "placements": [{"id": "preroll", "format": "video", "sizes": [[640, 360]]}],
    },
}


@dataclass(frozen=True)
class Site:
    """A publisher as its ad server integration sees it: its key and its placements."""

    publisher_id: str
    api_key: str
    domain: str
    placements: tuple[str, ...]


@dataclass(frozen=True)
class Fixture:
    """What the users need: the shop's pixel and the publishers' keys."""

    advertiser_id: str
    pixel_id: str
    sites: dict[str, Site]

    def to_message(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Fixture:
        sites = {
            name: Site(**{**site, "placements": tuple(site["placements"])})
            for name, site in data["sites"].items()
        }
        return cls(data["advertiser_id"], data["pixel_id"], sites)


class SetupError(Exception):
    """The service refused or failed a setup call; the message says which and why."""


class AdminApi:
    """The admin API over one keep-alive session; every unexpected status is a SetupError."""

    def __init__(self, base_url: str, admin_token: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {admin_token}"
        self.timeout = timeout

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        url = urljoin(self.base_url, path.lstrip("/"))
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise SetupError(f"{method} {path}: {exc}") from None
        if response.status_code != expect:
            raise SetupError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def close(self) -> None:
        self.session.close()


def prepare(base_url: str, admin_token: str, seed_buyers: int) -> Fixture:
    """Create or reuse the shop, replace the publishers, make the ``seed_buyers`` most popular
    users buyers, and wait until the service answers with all of it."""
    if not admin_token:
        raise SetupError("no admin token: pass --admin-token or set RETARGET_ADMIN_TOKEN")
    api = AdminApi(base_url, admin_token)
    try:
        advertiser, s2s_secret = _advertiser(api)
        audience_ids = _audiences(api, advertiser["id"])
        _ensure_campaigns(api, advertiser["id"], audience_ids)
        sites = _replace_publishers(api)
        fixture = Fixture(advertiser["id"], advertiser["pixel_id"], sites)
        _seed_buyers(api, advertiser["id"], s2s_secret, seed_buyers)
    finally:
        api.close()
    _wait_until_served(base_url, fixture)
    return fixture


def _advertiser(api: AdminApi) -> tuple[dict[str, Any], str]:
    """The locust shop and a fresh S2S secret (its secret is shown only at creation)."""
    listed = api.call("GET", "/v1/advertisers")["advertisers"]
    found = next((a for a in listed if a["name"] == ADVERTISER["name"]), None)
    if found is None:
        created = api.call("POST", "/v1/advertisers", expect=201, json=ADVERTISER)
        return created, created["s2s_secret"]
    rotated = api.call("POST", f"/v1/advertisers/{found['id']}/secret")
    return found, rotated["s2s_secret"]


def _audiences(api: AdminApi, advertiser_id: str) -> dict[str, str]:
    path = f"/v1/advertisers/{advertiser_id}/audiences"
    existing = {a["name"]: a["id"] for a in api.call("GET", path)["audiences"]}
    ids = {}
    for key, rule in AUDIENCES.items():
        ids[key] = existing.get(rule["name"]) or api.call("POST", path, 201, json=rule)["id"]
    return ids


def _ensure_campaigns(api: AdminApi, advertiser_id: str, audience_ids: dict[str, str]) -> None:
    listed = api.call("GET", "/v1/campaigns", params={"advertiser_id": advertiser_id})
    existing = {c["name"]: c for c in listed["campaigns"]}
    for body in _campaigns(audience_ids):
        found = existing.get(body["name"])
        if found is None:
            api.call("POST", "/v1/campaigns", 201, json={**body, "advertiser_id": advertiser_id})
        elif found["status"] != "active":
            api.call("PATCH", f"/v1/campaigns/{found['id']}", json={"status": "active"})


def _replace_publishers(api: AdminApi) -> dict[str, Site]:
    names = {body["name"] for body in PUBLISHERS.values()}
    for publisher in api.call("GET", "/v1/publishers")["publishers"]:
        if publisher["name"] in names:
            api.call("DELETE", f"/v1/publishers/{publisher['id']}", expect=204)
    sites = {}
    for site, body in PUBLISHERS.items():
        created = api.call("POST", "/v1/publishers", 201, json=body)
        sites[site] = Site(
            publisher_id=created["id"],
            api_key=created["api_key"],
            domain=body["domain"],
            placements=tuple(p["id"] for p in body["placements"]),
        )
    return sites


def _seed_buyers(api: AdminApi, advertiser_id: str, s2s_secret: str, count: int) -> None:
    """Purchases (and every third user an add-to-cart too) for ranks 1..count, sent as the
    shop's backend would: signed batches. Event ids are new per run, so memberships renew."""
    run = int(time.time())
    events = []
    for rank in range(1, count + 1):
        bought = PRODUCTS[rank % len(PRODUCTS)]
        events.append(_s2s_event(f"locust-seed-{run}-{rank}", "purchase", rank, bought, run))
        if rank % 3 == 0:
            carted = PRODUCTS[(rank + 1) % len(PRODUCTS)]
            events.append(_s2s_event(f"locust-cart-{run}-{rank}", "cart", rank, carted, run))
    for start in range(0, len(events), S2S_BATCH):
        batch = events[start : start + S2S_BATCH]
        body = json.dumps({"events": batch}, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Retarget-Advertiser": advertiser_id,
            SIGNATURE_HEADER: sign(s2s_secret, body, int(time.time())),
        }
        answer = api.call("POST", "/v1/events", data=body, headers=headers)
        if answer["rejected"]:
            rejected = next(r for r in answer["results"] if r["status"] == "rejected")
            raise SetupError(f"POST /v1/events rejected {answer['rejected']} events: {rejected}")


def _s2s_event(event_id: str, kind: str, rank: int, product: Product, ts: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": kind,
        "ts": ts,
        "user": {"cookie": cookie_id(rank)},
        "sku": product.sku,
        "product_name": product.name,
        "category": product.category,
        "value": product.price,
        "currency": "EUR",
    }


def _wait_until_served(base_url: str, fixture: Fixture, timeout: float = 15.0) -> None:
    """Every worker process of the service reloads its catalog on its own schedule: ask on
    fresh connections (each may reach another worker) until the pixel and every publisher's
    key work ten times in a row."""
    probe_user = cookie_id(0)  # outside the population: its decisions never touch a cap
    base = base_url.rstrip("/")
    deadline = time.monotonic() + timeout
    streak, last_error = 0, ""
    while streak < 10:
        if time.monotonic() > deadline:
            raise SetupError(f"the service did not serve the new setup in {timeout}s: {last_error}")
        try:
            last_error = _probe(base, fixture, probe_user)
        except requests.RequestException as exc:
            last_error = str(exc)
        if last_error:
            streak = 0
            time.sleep(0.1)
        else:
            streak += 1


def _probe(base: str, fixture: Fixture, user: str) -> str:
    """An empty string when one pixel hit and one decision per site answered as they should."""
    pixel = requests.get(
        f"{base}/px/{fixture.pixel_id}.gif",
        params={"ev": "view", "sku": "probe"},
        headers={"Cookie": f"rt_uid={user}", "Connection": "close"},
        timeout=5,
    )
    if pixel.status_code != 200 or "X-Retarget-Error" in pixel.headers:
        return f"pixel: {pixel.status_code} {pixel.headers.get('X-Retarget-Error')}"
    for name, site in fixture.sites.items():
        decision = requests.post(
            f"{base}/v1/decisions",
            json={
                "user": {"id": user, "namespace": "cookie"},
                "placements": [{"id": p} for p in site.placements],
            },
            headers={"Authorization": f"Bearer {site.api_key}", "Connection": "close"},
            timeout=5,
        )
        if decision.status_code != 200:
            return f"{name} decision: {decision.status_code} {decision.text[:200]}"
    return ""
