"""Admin API for advertisers: create, read, update, delete, secret rotation, embed code."""

from __future__ import annotations

import httpx
import pytest

from retarget.clock import FrozenClock
from tests.helpers import ADMIN, create_advertiser, fire_pixel


async def test_creating_an_advertiser_returns_its_pixel_id_and_secret_once(
    client: httpx.AsyncClient,
) -> None:
    created = await create_advertiser(client, "Book Shop", "Books.Example.com")

    assert created["name"] == "Book Shop"
    assert created["domain"] == "books.example.com"
    assert created["pixel_id"].startswith("px_")
    assert created["s2s_secret"].startswith("s2s_")
    fetched = (await client.get(f"/v1/advertisers/{created['id']}", headers=ADMIN)).json()
    assert "s2s_secret" not in fetched
    assert fetched["pixel_id"] == created["pixel_id"]


async def test_advertisers_are_listed_oldest_first(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await create_advertiser(client, "One", "one.example.com")
    clock.advance(1)
    second = await create_advertiser(client, "Two", "two.example.com")

    listed = (await client.get("/v1/advertisers", headers=ADMIN)).json()["advertisers"]

    assert [a["id"] for a in listed] == [first["id"], second["id"]]


async def test_an_advertiser_can_be_renamed(client: httpx.AsyncClient) -> None:
    created = await create_advertiser(client)

    response = await client.patch(
        f"/v1/advertisers/{created['id']}", json={"name": "Books & More"}, headers=ADMIN
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Books & More"
    assert response.json()["domain"] == created["domain"]


async def test_a_deleted_advertisers_pixel_stops_recording(client: httpx.AsyncClient) -> None:
    created = await create_advertiser(client)

    deleted = await client.delete(f"/v1/advertisers/{created['id']}", headers=ADMIN)
    hit = await fire_pixel(client, created["pixel_id"])

    assert deleted.status_code == 204
    assert (await client.get(f"/v1/advertisers/{created['id']}", headers=ADMIN)).status_code == 404
    assert hit.status_code == 404


async def test_rotating_the_secret_returns_a_new_one(client: httpx.AsyncClient) -> None:
    created = await create_advertiser(client)

    rotated = await client.post(f"/v1/advertisers/{created['id']}/secret", headers=ADMIN)

    assert rotated.status_code == 200
    assert rotated.json()["s2s_secret"] != created["s2s_secret"]


async def test_the_embed_code_points_at_the_pixel(client: httpx.AsyncClient) -> None:
    created = await create_advertiser(client)

    code = (await client.get(f"/v1/advertisers/{created['id']}/pixel", headers=ADMIN)).json()

    url = f"https://testserver/px/{created['pixel_id']}.gif"
    assert code["pixel_url"] == url
    assert code["img"].startswith(f'<img src="{url}?ev=purchase&amp;oid=ORDER_ID')
    assert code["script"].startswith("<script")
    assert f'"{url}"' in code["script"]


async def test_the_embed_code_escapes_a_hostile_host_header(client: httpx.AsyncClient) -> None:
    created = await create_advertiser(client)

    code = (
        await client.get(
            f"/v1/advertisers/{created['id']}/pixel",
            headers={**ADMIN, "Host": 'evil"><script>alert(1)</script>'},
        )
    ).json()

    assert "<script>alert(1)" not in code["img"]
    assert "</script>" not in code["script"][: -len("</script>")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "domain": "shop.example.com"}, "name"),
        ({"name": "Shop", "domain": "not a domain"}, "domain"),
        ({"name": "Shop"}, "domain"),
        ({"name": "x" * 201, "domain": "shop.example.com"}, "name"),
        ({"name": "Shop", "domain": "shop.example.com", "owner": "me"}, "owner"),
    ],
)
async def test_an_invalid_advertiser_is_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict, field: str
) -> None:
    response = await client.post("/v1/advertisers", json=body, headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


async def test_a_body_that_is_not_json_gets_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/advertisers",
        content=b"{not json",
        headers={**ADMIN, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}]
)
async def test_the_admin_api_needs_the_admin_token(
    client: httpx.AsyncClient, headers: dict
) -> None:
    response = await client.get("/v1/advertisers", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["field"] == "Authorization"


async def test_an_unknown_advertiser_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/advertisers/adv_nope", headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "advertiser_id"
