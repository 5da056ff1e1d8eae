"""Admin API for audiences."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import ADMIN, create_advertiser, create_audience


async def test_an_audience_is_created_with_its_rule(client: httpx.AsyncClient) -> None:
    shop = await create_advertiser(client)

    audience = await create_audience(
        client, shop["id"], name="books", categories=["books"], membership_days=30, delay_days=7
    )

    assert audience["advertiser_id"] == shop["id"]
    assert audience["event"] == "purchase"
    assert audience["categories"] == ["books"]
    assert (audience["membership_days"], audience["delay_days"]) == (30, 7)


async def test_audiences_are_listed_per_advertiser(client: httpx.AsyncClient) -> None:
    shop = await create_advertiser(client)
    other = await create_advertiser(client, "Other", "other.example.com")
    mine = await create_audience(client, shop["id"], name="mine")
    await create_audience(client, other["id"], name="theirs")

    listed = await client.get(f"/v1/advertisers/{shop['id']}/audiences", headers=ADMIN)

    assert [a["id"] for a in listed.json()["audiences"]] == [mine["id"]]


async def test_an_audience_can_be_changed(client: httpx.AsyncClient) -> None:
    shop = await create_advertiser(client)
    audience = await create_audience(client, shop["id"], membership_days=30)

    response = await client.patch(
        f"/v1/advertisers/{shop['id']}/audiences/{audience['id']}",
        json={"membership_days": 90, "delay_days": 14},
        headers=ADMIN,
    )

    assert response.status_code == 200
    assert (response.json()["membership_days"], response.json()["delay_days"]) == (90, 14)
    fetched = await client.get(
        f"/v1/advertisers/{shop['id']}/audiences/{audience['id']}", headers=ADMIN
    )
    assert fetched.json()["membership_days"] == 90


async def test_a_change_that_breaks_the_rule_is_refused(client: httpx.AsyncClient) -> None:
    shop = await create_advertiser(client)
    audience = await create_audience(client, shop["id"], membership_days=30)

    response = await client.patch(
        f"/v1/advertisers/{shop['id']}/audiences/{audience['id']}",
        json={"delay_days": 30},
        headers=ADMIN,
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "delay_days"


async def test_a_deleted_audience_is_gone(client: httpx.AsyncClient) -> None:
    shop = await create_advertiser(client)
    audience = await create_audience(client, shop["id"])
    path = f"/v1/advertisers/{shop['id']}/audiences/{audience['id']}"

    deleted = await client.delete(path, headers=ADMIN)

    assert deleted.status_code == 204
    assert (await client.get(path, headers=ADMIN)).status_code == 404


async def test_another_advertisers_audience_is_not_found(client: httpx.AsyncClient) -> None:
    shop = await create_advertiser(client)
    other = await create_advertiser(client, "Other", "other.example.com")
    theirs = await create_audience(client, other["id"])

    response = await client.get(
        f"/v1/advertisers/{shop['id']}/audiences/{theirs['id']}", headers=ADMIN
    )

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"membership_days": 10, "delay_days": 10}, "delay_days"),
        ({"membership_days": 0}, "membership_days"),
        ({"event": "refund"}, "event"),
        ({"min_value": -1}, "min_value"),
        ({"categories": ["x" * 129]}, "categories.0"),
        ({"name": ""}, "name"),
    ],
)
async def test_an_invalid_rule_is_refused_naming_the_field(
    client: httpx.AsyncClient, rule: dict, field: str
) -> None:
    shop = await create_advertiser(client)

    response = await client.post(
        f"/v1/advertisers/{shop['id']}/audiences", json={"name": "a", **rule}, headers=ADMIN
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


async def test_an_audience_needs_an_existing_advertiser(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/advertisers/adv_nope/audiences", json={"name": "a"}, headers=ADMIN
    )

    assert response.status_code == 404
