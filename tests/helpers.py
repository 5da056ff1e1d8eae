"""Arrange helpers: create what a test needs through the public API, as a user would."""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from retarget.app import create_app
from retarget.clock import Clock
from retarget.settings import Settings
from retarget.users import COOKIE_NAME

ADMIN = {"Authorization": "Bearer test-admin-token"}


async def create_advertiser(
    client: httpx.AsyncClient, name: str = "Book Shop", domain: str = "books.example.com"
) -> dict[str, Any]:
    response = await client.post(
        "/v1/advertisers", json={"name": name, "domain": domain}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return response.json()


async def create_audience(
    client: httpx.AsyncClient, advertiser_id: str, **rule: Any
) -> dict[str, Any]:
    body = {"name": "buyers", **rule}
    response = await client.post(
        f"/v1/advertisers/{advertiser_id}/audiences", json=body, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return response.json()


async def fire_pixel(
    client: httpx.AsyncClient, pixel_id: str, uid: str | None = None, **params: str
) -> httpx.Response:
    """A pixel hit from a browser that carries ``uid`` as its rt_uid cookie (or none)."""
    client.cookies.clear()
    headers = {"Cookie": f"{COOKIE_NAME}={uid}"} if uid else {}
    return await client.get(f"/px/{pixel_id}.gif", params=params, headers=headers)


async def export_user(client: httpx.AsyncClient, namespace: str, user_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/users/{namespace}/{user_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(api_key: str) -> dict[str, str]:
    """Headers that authenticate with an advertiser or publisher key."""
    return {"Authorization": f"Bearer {api_key}"}


async def create_advertiser_key(client: httpx.AsyncClient, advertiser_id: str) -> str:
    """A new API key of this advertiser (issued by the admin)."""
    response = await client.post(f"/v1/advertisers/{advertiser_id}/keys", headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["api_key"]


def banner(**fields: Any) -> dict[str, Any]:
    """A valid banner creative body; ``fields`` override or add."""
    return {
        "type": "banner",
        "width": 300,
        "height": 250,
        "image_url": "https://books.example.com/ads/300x250.png",
        "alt_text": "Still thinking about {product|our new arrivals}?",
        "landing_url": "https://books.example.com/?utm_source=retarget",
        **fields,
    }


def native(**fields: Any) -> dict[str, Any]:
    """A valid native creative body; ``fields`` override or add."""
    return {
        "type": "native",
        "title": "More {category|books} for you",
        "body": "Readers who bought {product|a book} came back for these.",
        "image_url": "https://books.example.com/ads/native.png",
        "landing_url": "https://books.example.com/new",
        **fields,
    }


def video(**fields: Any) -> dict[str, Any]:
    """A valid video creative body; ``fields`` override or add."""
    return {
        "type": "video",
        "media_url": "https://books.example.com/ads/trailer.mp4",
        "mime_type": "video/mp4",
        "duration_seconds": 15,
        "width": 640,
        "height": 360,
        "landing_url": "https://books.example.com/trailer",
        **fields,
    }


def campaign_body(audience_ids: list[str], **fields: Any) -> dict[str, Any]:
    """A valid campaign body for these audiences; ``fields`` override or add."""
    return {
        "name": "Bring back book buyers",
        "audience_ids": audience_ids,
        "bid_cpm": 2.5,
        "creatives": [banner()],
        **fields,
    }


async def create_campaign(
    client: httpx.AsyncClient,
    advertiser_id: str,
    audience_ids: list[str],
    headers: dict[str, str] = ADMIN,
    **fields: Any,
) -> dict[str, Any]:
    body = campaign_body(audience_ids, advertiser_id=advertiser_id, **fields)
    response = await client.post("/v1/campaigns", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def publisher_body(**fields: Any) -> dict[str, Any]:
    """A valid publisher body; ``fields`` override or add."""
    return {
        "name": "Puzzle Games",
        "domain": "games.example.net",
        "site_category": "games",
        "placements": [{"id": "home-top", "format": "banner", "sizes": [[300, 250]]}],
        **fields,
    }


async def create_publisher(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A new publisher; the answer carries its ``api_key``."""
    response = await client.post("/v1/publishers", json=publisher_body(**fields), headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


async def purchase(
    client: httpx.AsyncClient,
    pixel_id: str,
    uid: str | None = None,
    *,
    pn: str = "Dune",
    cat: str = "books",
    **params: str,
) -> str:
    """A purchase pixel hit (product ``pn`` in category ``cat``); the buyer's rt_uid."""
    response = await fire_pixel(client, pixel_id, uid, pn=pn, cat=cat, **params)
    assert response.status_code == 200, response.headers
    return uid or response.cookies[COOKIE_NAME]


async def decide(
    client: httpx.AsyncClient,
    api_key: str,
    uid: str | None,
    placements: tuple[str, ...] = ("feed-top",),
    *,
    explain: bool = False,
    **body: Any,
) -> httpx.Response:
    """``POST /v1/decisions`` for the cookie user ``uid`` (None: a request without an id)."""
    request = {
        "user": {"id": uid, "namespace": "cookie"} if uid else {},
        "placements": [{"id": placement} for placement in placements],
        **body,
    }
    params = {"explain": "1"} if explain else None
    return await client.post("/v1/decisions", json=request, params=params, headers=bearer(api_key))


def tcf_consent(*purposes: int, version: int = 2) -> str:
    """A TCF v2 core string (no vendors, no publisher restrictions) consenting to ``purposes``.

    Fields and widths from the IAB's "TC String" format; PurposesConsent starts at bit 152.
    """

    def letters(code: str) -> int:
        return (ord(code[0]) - ord("A")) << 6 | (ord(code[1]) - ord("A"))

    fields = [
        (version, 6),  # Version
        (18_000_000_000, 36),  # Created (deciseconds)
        (18_000_000_000, 36),  # LastUpdated
        (300, 12),  # CmpId
        (2, 12),  # CmpVersion
        (1, 6),  # ConsentScreen
        (letters("EN"), 12),  # ConsentLanguage
        (150, 12),  # VendorListVersion
        (4, 6),  # TcfPolicyVersion
        (1, 1),  # IsServiceSpecific
        (0, 1),  # UseNonStandardTexts
        (0, 12),  # SpecialFeatureOptIns
        (sum(1 << (24 - p) for p in set(purposes)), 24),  # PurposesConsent
        (0, 24),  # PurposesLITransparency
        (0, 1),  # PurposeOneTreatment
        (letters("DE"), 12),  # PublisherCC
        (0, 16),  # vendor consents: MaxVendorId
        (0, 1),  # IsRangeEncoding
        (0, 16),  # vendor legitimate interests: MaxVendorId
        (0, 1),  # IsRangeEncoding
        (0, 12),  # NumPubRestrictions
    ]
    value, width = 0, 0
    for field, bits in fields:
        value, width = value << bits | field, width + bits
    padding = -width % 8
    raw = (value << padding).to_bytes((width + padding) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@contextlib.asynccontextmanager
async def serving(settings: Settings, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own (for settings the ``app`` fixture does not have), through ASGI.

    Leaving the block shuts the app down cleanly, which flushes its report counters.
    """
    application = create_app(settings, clock=clock)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            yield c


@dataclass(frozen=True)
class Shop:
    """A book shop whose book buyers join ``audience_id``, and a social site showing its ads
    in four placements: ``feed-top`` and ``feed-bottom`` (banner 300x250), ``sidebar``
    (native) and ``leaderboard`` (banner 728x90)."""

    advertiser_id: str
    pixel_id: str
    s2s_secret: str
    audience_id: str
    publisher_id: str
    api_key: str


async def open_shop(client: httpx.AsyncClient) -> Shop:
    advertiser = await create_advertiser(client)
    buyers = await create_audience(
        client, advertiser["id"], name="book buyers", categories=["books"]
    )
    publisher = await create_publisher(
        client,
        name="Friends",
        domain="friends.example.net",
        site_category="social",
        placements=[
            {"id": "feed-top", "format": "banner", "sizes": [[300, 250]]},
            {"id": "feed-bottom", "format": "banner", "sizes": [[300, 250]]},
            {"id": "sidebar", "format": "native"},
            {"id": "leaderboard", "format": "banner", "sizes": [[728, 90]]},
        ],
    )
    return Shop(
        advertiser_id=advertiser["id"],
        pixel_id=advertiser["pixel_id"],
        s2s_secret=advertiser["s2s_secret"],
        audience_id=buyers["id"],
        publisher_id=publisher["id"],
        api_key=publisher["api_key"],
    )


async def commands_sent(redis: Redis, action: Callable[[], Awaitable[Any]]) -> list[str]:
    """Every command a client sent Redis while ``action`` ran, as MONITOR lists them (those a
    script runs inside Redis carry a "lua" source: not round trips, left out). A PING from a
    connection opened beforehand marks the end of the action's traffic in the stream."""
    marker = redis.client()
    await marker.ping()
    sent: list[str] = []
    try:
        async with redis.monitor() as monitor:
            await action()
            await marker.echo("end-of-action")
            async for command in monitor.listen():
                if command["command"].startswith("ECHO"):
                    break
                if command["client_type"] != "lua":
                    sent.append(command["command"])
    finally:
        await marker.aclose()
    return sent


def command_names(sent: list[str]) -> list[str]:
    return [command.split()[0].upper() for command in sent]


def metric(text: str, name: str) -> float:
    """The value of one sample (name with labels) in the Prometheus text, 0 if absent."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match[1]) if match else 0.0


async def hits_with_rotating_forwarded_for(
    client: httpx.AsyncClient, pixel_id: str, hits: int
) -> list[int]:
    """Statuses of ``hits`` pixel hits, each claiming another client in X-Forwarded-For."""
    statuses = []
    for n in range(hits):
        client.cookies.clear()
        response = await client.get(
            f"/px/{pixel_id}.gif",
            params={"cat": "books"},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
        statuses.append(response.status_code)
    return statuses
