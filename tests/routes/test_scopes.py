"""Who may do what: the admin token, an advertiser's key, a publisher's key, and no key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.helpers import (
    ADMIN,
    banner,
    bearer,
    campaign_body,
    create_advertiser,
    create_advertiser_key,
    create_audience,
    create_campaign,
    create_publisher,
)

A_USER = "AAAAAAAAAAAAAAAAAAAAAA"  # a well-formed rt_uid


@dataclass(frozen=True)
class Shops:
    """Two advertisers, A and B, each with an audience and a campaign; A holds a key."""

    a: dict[str, Any]
    b: dict[str, Any]
    a_audience: dict[str, Any]
    b_audience: dict[str, Any]
    a_campaign: dict[str, Any]
    b_campaign: dict[str, Any]
    a_key: dict[str, str]

    def fill(self, template: str) -> str:
        return template.format(
            a=self.a["id"],
            b=self.b["id"],
            a_audience=self.a_audience["id"],
            b_audience=self.b_audience["id"],
            a_campaign=self.a_campaign["id"],
            b_campaign=self.b_campaign["id"],
            b_creative=self.b_campaign["creatives"][0]["id"],
        )

    def fill_body(self, body: dict[str, Any] | None) -> dict[str, Any] | None:
        """``body`` with each ``{placeholder}`` string (alone or in a list) filled in."""
        if body is None:
            return None

        def filled(value: Any) -> Any:
            if isinstance(value, str) and value.startswith("{"):
                return self.fill(value)
            if isinstance(value, list):
                return [filled(v) for v in value]
            return value

        return {name: filled(value) for name, value in body.items()}


@pytest.fixture
async def shops(client: httpx.AsyncClient) -> Shops:
    a = await create_advertiser(client, "A Books", "a.example.com")
    b = await create_advertiser(client, "B Shoes", "b.example.com")
    a_audience = await create_audience(client, a["id"], name="a buyers")
    b_audience = await create_audience(client, b["id"], name="b buyers")
    return Shops(
        a=a,
        b=b,
        a_audience=a_audience,
        b_audience=b_audience,
        a_campaign=await create_campaign(client, a["id"], [a_audience["id"]], name="A's"),
        b_campaign=await create_campaign(client, b["id"], [b_audience["id"]], name="B's"),
        a_key=bearer(await create_advertiser_key(client, a["id"])),
    )


async def stored_config(redis: Redis) -> dict[bytes, Any]:
    """Everything stored under ``{cfg}``: advertisers, audiences, campaigns, keys, version."""
    snapshot: dict[bytes, Any] = {}
    async for key in redis.scan_iter("{cfg}:*"):
        if await redis.type(key) == b"hash":
            snapshot[key] = await redis.hgetall(key)
        else:
            snapshot[key] = await redis.get(key)
    return snapshot


# Advertiser A's key against advertiser B


B_AUDIENCE = "/v1/advertisers/{b}/audiences/{b_audience}"
B_CREATIVE = "/v1/campaigns/{b_campaign}/creatives/{b_creative}"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/v1/advertisers/{b}", None, id="advertiser-get"),
        pytest.param("PATCH", "/v1/advertisers/{b}", {"name": "Mine now"}, id="advertiser-patch"),
        pytest.param("DELETE", "/v1/advertisers/{b}", None, id="advertiser-delete"),
        pytest.param("POST", "/v1/advertisers/{b}/secret", None, id="secret-rotation"),
        pytest.param("GET", "/v1/advertisers/{b}/pixel", None, id="pixel-code"),
        pytest.param("POST", "/v1/advertisers/{b}/keys", None, id="key-issue"),
        pytest.param("GET", "/v1/advertisers/{b}/audiences", None, id="audiences-list"),
        pytest.param("GET", B_AUDIENCE, None, id="audience-get"),
        pytest.param(
            "POST", "/v1/advertisers/{b}/audiences", {"name": "mine"}, id="audience-create"
        ),
        pytest.param("PATCH", B_AUDIENCE, {"membership_days": 1}, id="audience-patch"),
        pytest.param("DELETE", B_AUDIENCE, None, id="audience-delete"),
        pytest.param("GET", "/v1/campaigns/{b_campaign}", None, id="campaign-get"),
        pytest.param("GET", "/v1/campaigns?advertiser_id={b}", None, id="campaigns-list-of-b"),
        pytest.param(
            "POST",
            "/v1/campaigns",
            campaign_body(["{b_audience}"], advertiser_id="{b}"),
            id="campaign-create-for-b",
        ),
        pytest.param(
            "PATCH", "/v1/campaigns/{b_campaign}", {"status": "paused"}, id="campaign-patch"
        ),
        pytest.param("DELETE", "/v1/campaigns/{b_campaign}", None, id="campaign-delete"),
        pytest.param("GET", "/v1/campaigns/{b_campaign}/creatives", None, id="creatives-list"),
        pytest.param("POST", "/v1/campaigns/{b_campaign}/creatives", banner(), id="creative-add"),
        pytest.param("GET", B_CREATIVE, None, id="creative-get"),
        pytest.param(
            "PUT",
            B_CREATIVE,
            banner(landing_url="https://a.example.com/stolen"),
            id="creative-replace",
        ),
        pytest.param("DELETE", B_CREATIVE, None, id="creative-delete"),
    ],
)
async def test_an_advertisers_key_cannot_touch_another_advertiser(
    client: httpx.AsyncClient,
    redis: Redis,
    shops: Shops,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = await stored_config(redis)
    json = shops.fill_body(body)

    response = await client.request(method, shops.fill(path), json=json, headers=shops.a_key)

    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    assert await stored_config(redis) == before


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_advertisers_key_cannot_reach_another_advertisers_audience_through_its_own_path(
    client: httpx.AsyncClient, redis: Redis, shops: Shops, method: str
) -> None:
    before = await stored_config(redis)
    json = {"membership_days": 1} if method == "PATCH" else None

    response = await client.request(
        method,
        shops.fill("/v1/advertisers/{a}/audiences/{b_audience}"),
        json=json,
        headers=shops.a_key,
    )

    assert response.status_code == 404
    assert await stored_config(redis) == before


async def test_an_advertisers_key_cannot_target_another_advertisers_audience(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    body = campaign_body([shops.b_audience["id"]])

    response = await client.post("/v1/campaigns", json=body, headers=shops.a_key)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "audience_ids.0"


async def test_an_advertisers_key_cannot_retarget_its_campaign_to_another_advertisers_audience(
    client: httpx.AsyncClient, redis: Redis, shops: Shops
) -> None:
    before = await stored_config(redis)

    response = await client.patch(
        f"/v1/campaigns/{shops.a_campaign['id']}",
        json={"audience_ids": [shops.b_audience["id"]]},
        headers=shops.a_key,
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "audience_ids.0"
    assert await stored_config(redis) == before


async def test_an_advertisers_key_cannot_hand_its_campaign_to_another_advertiser(
    client: httpx.AsyncClient, redis: Redis, shops: Shops
) -> None:
    before = await stored_config(redis)

    response = await client.patch(
        f"/v1/campaigns/{shops.a_campaign['id']}",
        json={"advertiser_id": shops.b["id"]},
        headers=shops.a_key,
    )

    assert response.status_code == 422
    assert await stored_config(redis) == before


# Advertiser A's key on its own things


async def test_an_advertisers_key_lists_only_its_own_campaigns(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    response = await client.get("/v1/campaigns", headers=shops.a_key)

    assert response.status_code == 200
    assert [c["id"] for c in response.json()["campaigns"]] == [shops.a_campaign["id"]]


async def test_an_advertisers_key_lists_only_its_own_advertiser(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    response = await client.get("/v1/advertisers", headers=shops.a_key)

    assert response.status_code == 200
    assert [a["id"] for a in response.json()["advertisers"]] == [shops.a["id"]]


async def test_an_advertisers_key_creates_campaigns_for_its_own_advertiser(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    body = campaign_body([shops.a_audience["id"]])

    response = await client.post("/v1/campaigns", json=body, headers=shops.a_key)

    assert response.status_code == 201, response.text
    assert response.json()["advertiser_id"] == shops.a["id"]


async def test_an_advertisers_key_manages_its_own_campaign_and_creatives(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    url = f"/v1/campaigns/{shops.a_campaign['id']}"

    paused = await client.patch(url, json={"status": "paused"}, headers=shops.a_key)
    added = await client.post(f"{url}/creatives", json=banner(), headers=shops.a_key)
    listed = await client.get(f"{url}/creatives", headers=shops.a_key)
    deleted = await client.delete(url, headers=shops.a_key)

    assert (paused.status_code, added.status_code, deleted.status_code) == (200, 201, 204)
    assert len(listed.json()["creatives"]) == 2


async def test_an_advertisers_key_manages_its_own_advertiser_and_audiences(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    own = f"/v1/advertisers/{shops.a['id']}"

    renamed = await client.patch(own, json={"name": "A Books & More"}, headers=shops.a_key)
    pixel = await client.get(f"{own}/pixel", headers=shops.a_key)
    audience = await client.post(f"{own}/audiences", json={"name": "new"}, headers=shops.a_key)
    audiences = await client.get(f"{own}/audiences", headers=shops.a_key)

    assert (renamed.status_code, pixel.status_code, audience.status_code) == (200, 200, 201)
    assert {a["id"] for a in audiences.json()["audiences"]} == {
        shops.a_audience["id"],
        audience.json()["id"],
    }


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param(
            "POST", "/v1/advertisers", {"name": "C", "domain": "c.example.com"}, id="advertiser"
        ),
        pytest.param("POST", "/v1/advertisers/{a}/keys", None, id="key-for-itself"),
        pytest.param(
            "POST",
            "/v1/publishers",
            {"name": "P", "domain": "p.example.com", "site_category": "news"},
            id="publisher",
        ),
        pytest.param("GET", f"/v1/users/cookie/{A_USER}", None, id="user-export"),
        pytest.param("DELETE", f"/v1/users/cookie/{A_USER}", None, id="user-erasure"),
    ],
)
async def test_an_advertisers_key_cannot_do_what_only_the_admin_may(
    client: httpx.AsyncClient,
    redis: Redis,
    shops: Shops,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    before = await stored_config(redis)

    response = await client.request(method, shops.fill(path), json=body, headers=shops.a_key)

    assert response.status_code == 403, response.text
    assert await stored_config(redis) == before


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_advertisers_key_cannot_touch_a_publisher(
    client: httpx.AsyncClient, redis: Redis, shops: Shops, method: str
) -> None:
    publisher = await create_publisher(client)
    before = await stored_config(redis)
    json = {"name": "Mine now"} if method == "PATCH" else None

    response = await client.request(
        method, f"/v1/publishers/{publisher['id']}", json=json, headers=shops.a_key
    )

    assert response.status_code == 403
    assert await stored_config(redis) == before


# A publisher's key


async def test_a_publishers_key_reads_its_own_publisher(client: httpx.AsyncClient) -> None:
    publisher = await create_publisher(client)

    response = await client.get(
        f"/v1/publishers/{publisher['id']}", headers=bearer(publisher["api_key"])
    )

    assert response.status_code == 200
    assert response.json()["id"] == publisher["id"]


async def test_a_publishers_key_lists_only_its_own_publisher(client: httpx.AsyncClient) -> None:
    publisher = await create_publisher(client, name="Mine")
    await create_publisher(client, name="Theirs")

    response = await client.get("/v1/publishers", headers=bearer(publisher["api_key"]))

    assert [p["id"] for p in response.json()["publishers"]] == [publisher["id"]]


async def test_a_publishers_key_cannot_read_another_publisher(client: httpx.AsyncClient) -> None:
    publisher = await create_publisher(client, name="Mine")
    other = await create_publisher(client, name="Theirs")

    response = await client.get(
        f"/v1/publishers/{other['id']}", headers=bearer(publisher["api_key"])
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("method", "body"),
    [("PATCH", {"name": "Renamed"}), ("DELETE", None)],
    ids=["patch", "delete"],
)
async def test_a_publishers_key_cannot_change_its_own_publisher(
    client: httpx.AsyncClient, redis: Redis, method: str, body: dict[str, Any] | None
) -> None:
    publisher = await create_publisher(client)
    before = await stored_config(redis)

    response = await client.request(
        method, f"/v1/publishers/{publisher['id']}", json=body, headers=bearer(publisher["api_key"])
    )

    assert response.status_code == 403
    assert await stored_config(redis) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/v1/campaigns", None, id="campaigns-list"),
        pytest.param("GET", "/v1/campaigns/{a_campaign}", None, id="campaign-get"),
        pytest.param(
            "POST",
            "/v1/campaigns",
            campaign_body(["{a_audience}"], advertiser_id="{a}"),
            id="campaign-create-for-a",
        ),
        pytest.param(
            "POST", "/v1/campaigns", campaign_body(["{a_audience}"]), id="campaign-create"
        ),
        pytest.param(
            "PATCH", "/v1/campaigns/{a_campaign}", {"status": "paused"}, id="campaign-patch"
        ),
        pytest.param("GET", "/v1/advertisers", None, id="advertisers-list"),
        pytest.param("GET", "/v1/advertisers/{a}", None, id="advertiser-get"),
        pytest.param("GET", "/v1/advertisers/{a}/audiences", None, id="audiences-list"),
        pytest.param(
            "POST",
            "/v1/publishers",
            {"name": "P", "domain": "p.example.com", "site_category": "news"},
            id="publisher-create",
        ),
        pytest.param("GET", f"/v1/users/cookie/{A_USER}", None, id="user-export"),
    ],
)
async def test_a_publishers_key_cannot_touch_advertisers_campaigns_or_users(
    client: httpx.AsyncClient,
    redis: Redis,
    shops: Shops,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    publisher = await create_publisher(client)
    before = await stored_config(redis)
    json = shops.fill_body(body)

    response = await client.request(
        method, shops.fill(path), json=json, headers=bearer(publisher["api_key"])
    )

    assert response.status_code == 403, response.text
    assert await stored_config(redis) == before


# No key, a wrong key, a revoked key


NOT_A_KEY = [
    pytest.param({}, id="no-key"),
    pytest.param({"Authorization": "Bearer rt_adv_not-a-key"}, id="wrong-key"),
    pytest.param({"Authorization": "Bearer "}, id="empty-key"),
    pytest.param({"Authorization": "test-admin-token"}, id="no-scheme"),
]


@pytest.mark.parametrize("headers", NOT_A_KEY)
async def test_a_request_without_a_known_key_is_unauthorized_everywhere(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    paths = [
        "/v1/advertisers",
        "/v1/advertisers/adv_nope",
        "/v1/advertisers/adv_nope/audiences",
        "/v1/campaigns",
        "/v1/campaigns/cmp_nope",
        "/v1/campaigns/cmp_nope/creatives",
        "/v1/publishers",
        "/v1/publishers/pub_nope",
    ]

    answers = {}
    for path in paths:
        response = await client.get(path, headers=headers)
        answers[path] = (response.status_code, response.json()["error"]["code"])

    assert answers == dict.fromkeys(paths, (401, "unauthorized"))


@pytest.mark.parametrize("headers", NOT_A_KEY[:2])
async def test_a_request_without_a_known_key_changes_nothing(
    client: httpx.AsyncClient, redis: Redis, shops: Shops, headers: dict[str, str]
) -> None:
    before = await stored_config(redis)

    response = await client.delete(f"/v1/campaigns/{shops.b_campaign['id']}", headers=headers)

    assert response.status_code == 401
    assert await stored_config(redis) == before


async def test_an_unauthorized_request_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/campaigns", json={"name": ""})

    assert response.status_code == 401


async def test_a_deleted_advertisers_key_stops_working(
    client: httpx.AsyncClient, shops: Shops
) -> None:
    await client.delete(f"/v1/advertisers/{shops.a['id']}", headers=ADMIN)

    response = await client.get("/v1/campaigns", headers=shops.a_key)

    assert response.status_code == 401


# Keys at rest


async def test_keys_are_stored_only_as_their_sha256(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    shop = await create_advertiser(client)
    advertiser_key = await create_advertiser_key(client, shop["id"])
    publisher_key = (await create_publisher(client))["api_key"]

    stored = await redis.hgetall("{cfg}:api_keys")

    assert set(stored) == {
        hashlib.sha256(advertiser_key.encode()).hexdigest().encode(),
        hashlib.sha256(publisher_key.encode()).hexdigest().encode(),
    }
    for key in (advertiser_key, publisher_key):
        assert all(key.encode() not in v for v in stored.values())
        assert all(key[10:].encode() not in v for v in stored.values())


async def test_no_plaintext_key_is_anywhere_in_redis(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    shop = await create_advertiser(client)
    keys = [
        await create_advertiser_key(client, shop["id"]),
        (await create_publisher(client))["api_key"],
    ]

    stored: list[bytes] = []
    async for name in redis.scan_iter():
        stored.append(name)
        if await redis.type(name) == b"hash":
            for field, value in (await redis.hgetall(name)).items():
                stored += [field, value]
        elif await redis.type(name) == b"string":
            stored.append(await redis.get(name))

    assert stored
    assert not [s for s in stored for key in keys if key[10:].encode() in s]
