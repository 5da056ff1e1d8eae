"""Opt-out, export and erasure."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from tests.helpers import ADMIN, create_advertiser, create_audience, export_user, fire_pixel


async def test_opting_out_erases_the_browser_and_stops_recording(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    shop = await create_advertiser(client)
    await create_audience(client, shop["id"])
    uid = (await fire_pixel(client, shop["pixel_id"])).cookies["rt_uid"]

    client.cookies.clear()
    opt_out = await client.get("/optout", headers={"Cookie": f"rt_uid={uid}"})
    after = await client.get(
        f"/px/{shop['pixel_id']}.gif", headers={"Cookie": f"rt_uid={uid}; rt_optout=1"}
    )

    assert opt_out.status_code == 200
    assert opt_out.headers["content-type"].startswith("text/html")
    set_cookies = opt_out.headers.get_list("set-cookie")
    assert any(c.startswith("rt_optout=1;") and "Max-Age=157680000" in c for c in set_cookies)
    assert any(c.startswith('rt_uid="";') or c.startswith("rt_uid=;") for c in set_cookies)
    assert after.status_code == 200
    assert [k async for k in redis.scan_iter() if not k.startswith(b"{cfg}")] == []


async def test_an_admin_can_erase_a_user(client: httpx.AsyncClient) -> None:
    shop = await create_advertiser(client)
    await create_audience(client, shop["id"])
    uid = (await fire_pixel(client, shop["pixel_id"], oid="o-1")).cookies["rt_uid"]

    erased = await client.delete(f"/v1/users/cookie/{uid}", headers=ADMIN)

    assert erased.status_code == 204
    exported = await export_user(client, "cookie", uid)
    assert exported["memberships"] == []
    assert exported["seen_event_ids"] == []


async def test_an_export_of_an_unknown_user_is_empty(client: httpx.AsyncClient) -> None:
    exported = await export_user(client, "maid", "6D92078A-8246-4BA4-AE5B-76104861E7DC")

    assert exported["id"] == "6d92078a-8246-4ba4-ae5b-76104861e7dc"
    assert exported["memberships"] == []
    assert exported["ttl_seconds"] is None


async def test_an_export_with_a_malformed_id_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/email/not-a-hash", headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "id"


async def test_user_data_needs_the_admin_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/users/cookie/AAAAAAAAAAAAAAAAAAAAAA")

    assert response.status_code == 401
