"""Arrange helpers: create what a test needs through the public API, as a user would."""

from __future__ import annotations

from typing import Any

import httpx

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
