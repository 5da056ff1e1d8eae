"""Impression and click URLs: counted once, signed, expiring, and never an open redirect."""

from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.types import ASGIApp

from retarget.budgets import day_of
from retarget.clock import FrozenClock
from retarget.pixel import GIF
from retarget.settings import Settings
from tests.helpers import (
    ADMIN,
    Shop,
    banner,
    create_campaign,
    decide,
    open_shop,
    purchase,
    serving,
)


@dataclass(frozen=True)
class Served:
    """An ad the buyer ``uid`` was shown at the shop's publisher, and its campaign."""

    shop: Shop
    uid: str
    campaign: dict[str, Any]
    ad: dict[str, Any]

    @property
    def imp_path(self) -> str:
        return urlsplit(self.ad["impression_url"]).path

    @property
    def click_path(self) -> str:
        return urlsplit(self.ad["click_url"]).path

    @property
    def token(self) -> str:
        return self.click_path.removeprefix("/t/click/")

    @property
    def landing_url(self) -> str:
        (creative,) = [c for c in self.campaign["creatives"] if c["id"] == self.ad["creative_id"]]
        return creative["landing_url"]

    @property
    def counter_field(self) -> str:
        """The report counter of this ad: ``<metric>|`` + this."""
        ad = self.ad
        return "|".join(
            (
                ad["advertiser_id"],
                ad["campaign_id"],
                ad["creative_id"],
                self.shop.publisher_id,
                "social",
            )
        )


async def serve_an_ad(client: httpx.AsyncClient, **campaign_fields: Any) -> Served:
    shop = await open_shop(client)
    campaign = await create_campaign(
        client, shop.advertiser_id, [shop.audience_id], **campaign_fields
    )
    uid = await purchase(client, shop.pixel_id)
    response = await decide(client, shop.api_key, uid)
    ad = response.json()["decisions"]["feed-top"]
    assert ad is not None, response.headers
    return Served(shop, uid, campaign, ad)


@pytest.fixture
async def served(client: httpx.AsyncClient) -> Served:
    return await serve_an_ad(
        client,
        creatives=[
            banner(landing_url="https://books.example.com/dune?utm_source=retarget"),
            banner(landing_url="https://books.example.com/other"),
        ],
    )


async def counters(redis: Redis, clock: FrozenClock) -> dict[str, int]:
    """The day's report counters, as the app flushed them."""
    stored = await redis.hgetall("{stats}:" + day_of(clock.now()))
    return {field.decode(): int(value) for field, value in stored.items()}


def refused_without_redirect(response: httpx.Response) -> bool:
    return 400 <= response.status_code < 500 and "location" not in response.headers


# ---- impressions -------------------------------------------------------------------------


async def test_an_impression_url_answers_a_transparent_gif(
    client: httpx.AsyncClient, served: Served
) -> None:
    response = await client.get(served.imp_path)

    assert response.status_code == 200
    assert response.content == GIF
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store"


async def test_an_impression_is_counted_once_however_often_its_url_is_fetched(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    # Leaving ``serving`` shuts the app down, and a clean shutdown flushes the counters.
    async with serving(settings, clock) as client:
        served = await serve_an_ad(client)
        replies = [await client.get(served.imp_path) for _ in range(3)]

    assert [r.status_code for r in replies] == [200, 200, 200]
    assert (await counters(redis, clock))["impressions|" + served.counter_field] == 1


# ---- clicks ------------------------------------------------------------------------------


async def test_a_click_redirects_to_the_creatives_stored_landing_url(
    client: httpx.AsyncClient, served: Served
) -> None:
    response = await client.get(served.click_path)

    assert response.status_code == 302
    assert response.headers["location"] == "https://books.example.com/dune?utm_source=retarget"
    assert response.headers["cache-control"] == "no-store"


async def test_a_click_is_counted_once_however_often_it_is_followed(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with serving(settings, clock) as client:
        served = await serve_an_ad(client)
        replies = [await client.get(served.click_path) for _ in range(3)]

    assert [r.status_code for r in replies] == [302, 302, 302]
    assert (await counters(redis, clock))["clicks|" + served.counter_field] == 1


async def test_a_click_follows_the_landing_url_stored_now_not_at_decision_time(
    client: httpx.AsyncClient, served: Served
) -> None:
    creative_path = f"/v1/campaigns/{served.ad['campaign_id']}/creatives/{served.ad['creative_id']}"
    replaced = await client.put(
        creative_path, json=banner(landing_url="https://books.example.com/sale"), headers=ADMIN
    )
    assert replaced.status_code == 200, replaced.text

    response = await client.get(served.click_path)

    assert response.status_code == 302
    assert response.headers["location"] == "https://books.example.com/sale"


async def test_a_click_on_an_ad_whose_creative_was_deleted_is_not_found(
    client: httpx.AsyncClient, served: Served
) -> None:
    creative_path = f"/v1/campaigns/{served.ad['campaign_id']}/creatives/{served.ad['creative_id']}"
    deleted = await client.delete(creative_path, headers=ADMIN)
    assert deleted.status_code == 204, deleted.text

    response = await client.get(served.click_path)

    assert response.status_code == 404
    assert "location" not in response.headers


async def test_a_click_on_an_ad_whose_campaign_was_deleted_is_not_found(
    client: httpx.AsyncClient, served: Served
) -> None:
    deleted = await client.delete(f"/v1/campaigns/{served.ad['campaign_id']}", headers=ADMIN)
    assert deleted.status_code == 204, deleted.text

    response = await client.get(served.click_path)

    assert response.status_code == 404
    assert "location" not in response.headers


# ---- tokens that are not ours --------------------------------------------------------------


def flip(text: str, index: int) -> str:
    """Replace one base64url character by another that decodes to different bits."""
    return text[:index] + ("B" if text[index] != "B" else "C") + text[index + 1 :]


@pytest.mark.parametrize("kind", ["imp", "click"])
@pytest.mark.parametrize("part", ["payload", "signature"])
async def test_a_token_with_a_changed_character_is_refused_without_a_redirect(
    client: httpx.AsyncClient, served: Served, kind: str, part: str
) -> None:
    payload, signature = served.token.split(".")
    if part == "payload":
        payload = flip(payload, len(payload) // 2)
    else:
        signature = flip(signature, len(signature) // 2)

    response = await client.get(f"/t/{kind}/{payload}.{signature}")

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "token"
    assert "location" not in response.headers


@pytest.mark.parametrize("kind", ["imp", "click"])
async def test_a_token_past_its_lifetime_is_refused_without_a_redirect(
    client: httpx.AsyncClient, served: Served, clock: FrozenClock, settings: Settings, kind: str
) -> None:
    clock.advance(settings.tracking_ttl_seconds)

    response = await client.get(f"/t/{kind}/{served.token}")

    assert response.status_code == 422
    assert "expired" in response.json()["error"]["message"]
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "garbage",
    [
        "x",
        "a.b",
        "..",
        "%00",
        "aGVsbG8.d29ybGQ",
        "https:%2F%2Fevil.example.com",
        "evil.example.com",
        "a" * 5000,
    ],
)
async def test_a_garbage_token_is_refused_without_a_redirect(
    client: httpx.AsyncClient, served: Served, garbage: str
) -> None:
    response = await client.get(f"/t/click/{garbage}")

    assert refused_without_redirect(response), (response.status_code, response.headers)


def decoded(token: str) -> tuple[bytes, bytes] | None:
    """The bytes a token's two parts stand for, decoded as leniently as base64 allows."""
    parts = token.split(".")
    if len(parts) != 2:
        return None
    try:
        return tuple(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in parts)  # type: ignore[return-value]
    except ValueError:
        return None


def mutations(token: str, other: str, rng: random.Random, count: int) -> list[str]:
    """Byte flips, edits, truncations, splices with another genuine token, base64 junk."""
    junk = string.ascii_letters + string.digits + "-_.=+/%~!*'()?#&;:@ \x00\x7f\u00e9\u202e"

    def flip_bit(t: str) -> str:
        i = rng.randrange(len(t))
        return t[:i] + chr(ord(t[i]) ^ (1 << rng.randrange(7))) + t[i + 1 :]

    def replace(t: str) -> str:
        i = rng.randrange(len(t))
        return t[:i] + rng.choice(junk) + t[i + 1 :]

    def delete(t: str) -> str:
        i = rng.randrange(len(t))
        return t[:i] + t[i + 1 :]

    def insert(t: str) -> str:
        i = rng.randrange(len(t) + 1)
        return t[:i] + rng.choice(junk) + t[i:]

    def truncate(t: str) -> str:
        return t[: rng.randrange(len(t))]

    def splice(t: str) -> str:
        return t.split(".")[0] + "." + other.split(".")[1]

    def b64_junk(_: str) -> str:
        def part(n: int) -> str:
            return base64.urlsafe_b64encode(rng.randbytes(n)).rstrip(b"=").decode()

        return f"{part(rng.randrange(200))}.{part(rng.randrange(40))}"

    edits = [flip_bit, flip_bit, replace, replace, delete, insert, truncate, splice, b64_junk]
    found = []
    for _ in range(count):
        mutated = token
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            mutated = rng.choice(edits)(mutated) or "."
        found.append(mutated)
    return found


async def asgi_get(app: ASGIApp, target: str) -> tuple[int, dict[bytes, bytes]]:
    """A GET of a percent-encoded ``target`` straight into the app: the status and headers.
    (For ten thousand requests: the same app, without httpx building each request.)"""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": unquote(target),
        "raw_path": target.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 443),
    }
    started: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)

    await app(scope, receive, send)  # type: ignore[arg-type]
    return started["status"], dict(started.get("headers", []))


async def test_ten_thousand_mutated_tokens_never_redirect_anywhere_else(
    app: FastAPI, client: httpx.AsyncClient, served: Served
) -> None:
    """A mutation may only be accepted if it still stands for the genuine token's bytes
    (base64 ignores some characters and the last character's spare bits); then it goes to the
    stored landing URL. Everything else is a 4xx without a Location header."""
    again = await decide(client, served.shop.api_key, served.uid)
    other = urlsplit(again.json()["decisions"]["feed-top"]["click_url"]).path.split("/")[-1]
    genuine = decoded(served.token)
    rng = random.Random(20261123)
    statuses: set[int] = set()

    for mutated in mutations(served.token, other, rng, 10_000):
        status, headers = await asgi_get(app, f"/t/click/{quote(mutated, safe='')}")
        statuses.add(status)
        if status == 302:
            assert decoded(mutated) == genuine, mutated
            assert headers[b"location"] == served.landing_url.encode()
        else:
            assert 400 <= status < 500, (mutated, status)
            assert b"location" not in headers, mutated

    assert 422 in statuses
