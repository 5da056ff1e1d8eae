"""Admin API for publishers: create (with its key, shown once), read, update, delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from retarget.clock import FrozenClock
from tests.helpers import ADMIN, bearer, create_publisher, publisher_body


async def test_creating_a_publisher_returns_it_with_its_key(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/publishers", json=publisher_body(domain="Games.Example.NET"), headers=ADMIN
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"].startswith("pub_")
    assert created["api_key"].startswith("rt_pub_")
    assert created["domain"] == "games.example.net"
    assert created["site_category"] == "games"
    assert created["placements"] == [{"id": "home-top", "format": "banner", "sizes": [[300, 250]]}]


async def test_a_publishers_key_is_shown_only_once(client: httpx.AsyncClient) -> None:
    created = await create_publisher(client)

    fetched = await client.get(f"/v1/publishers/{created['id']}", headers=ADMIN)

    assert fetched.status_code == 200
    assert fetched.json() == {k: v for k, v in created.items() if k != "api_key"}


async def test_publishers_are_listed_oldest_first(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await create_publisher(client, name="One")
    clock.advance(1)
    second = await create_publisher(client, name="Two")

    listed = (await client.get("/v1/publishers", headers=ADMIN)).json()["publishers"]

    assert [p["id"] for p in listed] == [first["id"], second["id"]]
    assert all("api_key" not in p for p in listed)


async def test_a_publisher_can_be_changed(client: httpx.AsyncClient) -> None:
    created = await create_publisher(client)
    placements = [
        {"id": "feed-1", "format": "native", "sizes": []},
        {"id": "preroll", "format": "video", "sizes": [[640, 360]]},
    ]

    response = await client.patch(
        f"/v1/publishers/{created['id']}",
        json={"name": "Puzzle Games Plus", "placements": placements},
        headers=ADMIN,
    )

    assert response.status_code == 200, response.text
    fetched = (await client.get(f"/v1/publishers/{created['id']}", headers=ADMIN)).json()
    assert fetched["name"] == "Puzzle Games Plus"
    assert fetched["placements"] == placements
    assert fetched["domain"] == created["domain"]


async def test_a_deleted_publisher_is_gone_and_its_key_stops_working(
    client: httpx.AsyncClient,
) -> None:
    created = await create_publisher(client)

    deleted = await client.delete(f"/v1/publishers/{created['id']}", headers=ADMIN)

    assert deleted.status_code == 204
    assert (await client.get(f"/v1/publishers/{created['id']}", headers=ADMIN)).status_code == 404
    own = await client.get(f"/v1/publishers/{created['id']}", headers=bearer(created["api_key"]))
    assert own.status_code == 401


async def test_an_unknown_publisher_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/publishers/pub_nope", headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "publisher_id"


@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
async def test_changing_an_unknown_publisher_is_a_404(
    client: httpx.AsyncClient, method: str
) -> None:
    json = {"name": "x"} if method == "PATCH" else None

    response = await client.request(method, "/v1/publishers/pub_nope", json=json, headers=ADMIN)

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param(
            {
                "placements": [
                    {"id": "top", "format": "banner"},
                    {"id": "top", "format": "native"},
                ]
            },
            "placements",
            id="duplicate-placement-ids",
        ),
        pytest.param({"name": "x" * 201}, "name", id="name-too-long"),
        pytest.param({"domain": "not a domain"}, "domain", id="domain"),
        pytest.param({"site_category": "casino"}, "site_category", id="category"),
        pytest.param(
            {"placements": [{"id": "a/b", "format": "banner"}]}, "placements.0.id", id="slash-id"
        ),
        pytest.param(
            {"placements": [{"id": "top", "format": "popup"}]},
            "placements.0.format",
            id="placement-format",
        ),
        pytest.param(
            {"placements": [{"id": "top", "format": "banner", "sizes": [[300, 0]]}]},
            "placements.0.sizes.0.1",
            id="placement-size",
        ),
        pytest.param({"api_key": "mine"}, "api_key", id="chosen-key"),
    ],
)
async def test_an_invalid_publisher_is_refused_naming_the_field(
    client: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/publishers", json=publisher_body(**fields), headers=ADMIN)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["field"] == field
    assert (await client.get("/v1/publishers", headers=ADMIN)).json()["publishers"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param(
            {
                "placements": [
                    {"id": "top", "format": "banner"},
                    {"id": "top", "format": "native"},
                ]
            },
            "placements",
            id="duplicate-placement-ids",
        ),
        pytest.param({"name": "x" * 201}, "name", id="name-too-long"),
        pytest.param({"site_category": "casino"}, "site_category", id="category"),
    ],
)
async def test_an_invalid_change_to_a_publisher_is_refused_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    created = await create_publisher(client)

    response = await client.patch(f"/v1/publishers/{created['id']}", json=changes, headers=ADMIN)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    fetched = (await client.get(f"/v1/publishers/{created['id']}", headers=ADMIN)).json()
    assert fetched["placements"] == created["placements"]


async def test_a_publisher_can_get_another_key_and_both_work(client: httpx.AsyncClient) -> None:
    publisher = await create_publisher(client)

    response = await client.post(f"/v1/publishers/{publisher['id']}/keys", headers=ADMIN)

    assert response.status_code == 201
    second = response.json()["api_key"]
    assert second != publisher["api_key"]
    for key in (publisher["api_key"], second):
        own = await client.get(f"/v1/publishers/{publisher['id']}", headers=bearer(key))
        assert own.status_code == 200
