"""The whole service on a real three-master Redis Cluster, through the app (ASGI).

Buyers are picked so that their keys live on every master: each scenario below runs for a
user on each node, so a script, a pipeline or a transaction that only works on one server
fails here (redis-py refuses keys of two slots before sending; the nodes answer CROSSSLOT or
MOVED).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from retarget.budgets import day_of
from retarget.clock import FrozenClock
from retarget.settings import Settings
from retarget.store import keys
from retarget.users import Namespace, UserRef, new_cookie_id
from tests.cluster.conftest import LocalCluster
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Service, service_env
from tests.helpers import (
    ADMIN,
    Shop,
    create_campaign,
    decide,
    export_user,
    fire_pixel,
    open_shop,
    purchase,
    serving,
)
from tests.routes.test_events import post_events

DAY = 86_400
NO_FILL = "x-retarget-no-fill"
SCRIPTS = ("record_event", "decide", "track")


def ad_in(response: httpx.Response) -> dict[str, Any] | None:
    assert response.status_code == 200, response.text
    return response.json()["decisions"]["feed-top"]


async def buyer_on_each_master(redis: RedisCluster) -> dict[int, str]:
    """A new cookie id per master (by port) whose keys that master holds."""
    masters = {node.port for node in redis.get_primaries()}
    found: dict[int, str] = {}
    while set(found) != masters:
        uid = new_cookie_id()
        node = redis.get_node_from_key(keys.user_profile(UserRef(Namespace.COOKIE, uid)))
        assert node is not None
        found.setdefault(node.port, uid)
    return found


async def nodes(cluster: LocalCluster) -> list[Redis]:
    """A plain client per node, to look at one server at a time."""
    return [Redis(host="127.0.0.1", port=port) for port in cluster.ports]


async def campaign_capped_at(client: httpx.AsyncClient, shop: Shop, impressions: int) -> Any:
    return await create_campaign(
        client,
        shop.advertiser_id,
        [shop.audience_id],
        frequency_caps=[{"impressions": impressions, "seconds": DAY}],
    )


# ---- pixel → decision → cap ----------------------------------------------------------------


async def test_a_buyer_on_any_master_is_served_until_the_frequency_cap_then_gets_no_ad(
    client: httpx.AsyncClient, redis: RedisCluster
) -> None:
    shop = await open_shop(client)
    campaign = await campaign_capped_at(client, shop, 2)
    buyers = await buyer_on_each_master(redis)

    for uid in buyers.values():
        await purchase(client, shop.pixel_id, uid)
        served = [ad_in(await decide(client, shop.api_key, uid)) for _ in range(2)]
        capped = await decide(client, shop.api_key, uid, explain=True)

        assert [ad and ad["campaign_id"] for ad in served] == [campaign["id"]] * 2
        assert ad_in(capped) is None
        assert capped.json()["explain"]["feed-top"][campaign["id"]] == "frequency_capped"
        assert capped.headers[NO_FILL] == "not_eligible"


async def test_a_browser_that_never_bought_gets_no_ad_on_a_cluster(
    client: httpx.AsyncClient,
) -> None:
    shop = await open_shop(client)
    await campaign_capped_at(client, shop, 2)

    response = await decide(client, shop.api_key, new_cookie_id())

    assert ad_in(response) is None


async def test_a_signed_batch_of_purchases_reaches_buyers_on_every_master(
    client: httpx.AsyncClient, redis: RedisCluster, clock: FrozenClock
) -> None:
    """``POST /v1/events`` records a batch as one pipeline of scripts, split by node."""
    shop = await open_shop(client)
    await campaign_capped_at(client, shop, 1)
    buyers = list((await buyer_on_each_master(redis)).values())
    advertiser = {"id": shop.advertiser_id, "s2s_secret": shop.s2s_secret}
    events = [
        {
            "event_id": f"order-{i}",
            "type": "purchase",
            "ts": int(clock.now()) - 60,
            "user": {"cookie": uid},
            "category": "books",
        }
        for i, uid in enumerate(buyers)
    ]

    response = await post_events(client, advertiser, events, clock)

    assert response.status_code == 200, response.text
    for uid in buyers:
        assert ad_in(await decide(client, shop.api_key, uid)) is not None


# ---- tracking and reports --------------------------------------------------------------------


async def test_impressions_and_clicks_are_counted_once_and_flushed_to_the_reports(
    settings: Settings, clock: FrozenClock, redis: RedisCluster
) -> None:
    """The counter flush is one pipeline over ``{stats}`` and ``{spend}``: two slots, which
    the cluster client splits by node."""
    async with serving(settings, clock) as client:
        shop = await open_shop(client)
        campaign = await campaign_capped_at(client, shop, 5)
        buyers = await buyer_on_each_master(redis)
        for uid in buyers.values():
            await purchase(client, shop.pixel_id, uid)
            ad = ad_in(await decide(client, shop.api_key, uid))
            assert ad is not None
            for url in (ad["impression_url"], ad["impression_url"]):
                assert (await client.get(urlsplit(url).path)).status_code == 200
            for url in (ad["click_url"], ad["click_url"]):
                assert (await client.get(urlsplit(url).path)).status_code == 302
    # Leaving ``serving`` shut the app down cleanly, which flushed its counters.
    async with serving(settings, clock) as client:
        today = time.strftime("%Y-%m-%d", time.gmtime(clock.now()))
        params = {"advertiser_id": shop.advertiser_id, "start": today, "end": today}
        report = await client.get("/v1/reports", params=params, headers=ADMIN)

    assert report.status_code == 200, report.text
    assert report.json()["totals"]["impressions"] == len(buyers)
    assert report.json()["totals"]["clicks"] == len(buyers)
    stats = await redis.hgetall(keys.stats(day_of(clock.now())))
    spend = await redis.hgetall(keys.SPEND_TOTAL)
    totals: dict[str, int] = {}
    for field, value in stats.items():
        metric = field.decode().split("|")[0]
        totals[metric] = totals.get(metric, 0) + int(value)
    assert totals["impressions"] == len(buyers)
    assert totals["clicks"] == len(buyers)
    assert int(spend[campaign["id"].encode()]) == len(buyers)


# ---- admin API -------------------------------------------------------------------------------


async def test_the_admin_api_creates_and_lists_advertisers_campaigns_and_publishers(
    client: httpx.AsyncClient,
) -> None:
    shop = await open_shop(client)
    campaign = await campaign_capped_at(client, shop, 1)

    advertisers = (await client.get("/v1/advertisers", headers=ADMIN)).json()
    campaigns = (await client.get("/v1/campaigns", headers=ADMIN)).json()
    publisher = await client.get(f"/v1/publishers/{shop.publisher_id}", headers=ADMIN)

    assert [a["id"] for a in advertisers["advertisers"]] == [shop.advertiser_id]
    assert [c["id"] for c in campaigns["campaigns"]] == [campaign["id"]]
    assert publisher.status_code == 200


async def test_concurrent_edits_of_a_campaign_never_undo_each_other_on_a_cluster(
    client: httpx.AsyncClient,
) -> None:
    """Configuration writes keep WATCH/MULTI/EXEC on a cluster: ``{cfg}`` is one slot."""
    shop = await open_shop(client)
    campaign = await campaign_capped_at(client, shop, 1)
    path = f"/v1/campaigns/{campaign['id']}"

    for round_ in range(10):
        pause, rename = await asyncio.gather(
            client.patch(path, json={"status": "paused"}, headers=ADMIN),
            client.patch(path, json={"name": f"renamed {round_}"}, headers=ADMIN),
        )
        assert {pause.status_code, rename.status_code} <= {200, 409}
        stored = (await client.get(path, headers=ADMIN)).json()
        if pause.status_code == 200:
            assert stored["status"] == "paused"
        if rename.status_code == 409:
            assert rename.json()["error"]["field"] == "version"
        await client.patch(path, json={"status": "active"}, headers=ADMIN)


async def test_a_change_made_through_another_worker_reaches_this_one(
    settings: Settings, clock: FrozenClock, client: httpx.AsyncClient
) -> None:
    """Each worker polls ``{cfg}:version``; here a second app plays the other worker."""
    async with serving(settings, clock) as other_worker:
        shop = await open_shop(other_worker)

    for _ in range(200):  # the poll runs every catalog_refresh_seconds (0.5 s)
        found = await client.get(f"/v1/advertisers/{shop.advertiser_id}", headers=ADMIN)
        if found.status_code == 200:
            break
        await asyncio.sleep(0.02)
    assert found.status_code == 200


# ---- privacy ---------------------------------------------------------------------------------


async def test_a_buyer_on_any_master_can_be_exported_and_erased(
    client: httpx.AsyncClient, redis: RedisCluster
) -> None:
    shop = await open_shop(client)
    for uid in (await buyer_on_each_master(redis)).values():
        await purchase(client, shop.pixel_id, uid)

        exported = await export_user(client, "cookie", uid)
        erased = await client.delete(f"/v1/users/cookie/{uid}", headers=ADMIN)
        after = await export_user(client, "cookie", uid)

        assert [m["audience_id"] for m in exported["memberships"]] == [shop.audience_id]
        assert erased.status_code == 204
        assert after["memberships"] == []
        assert after["last_purchases"] == {}


async def test_opting_out_erases_the_browser_on_a_cluster(
    client: httpx.AsyncClient, redis: RedisCluster
) -> None:
    shop = await open_shop(client)
    uid = next(iter((await buyer_on_each_master(redis)).values()))
    await purchase(client, shop.pixel_id, uid)

    client.cookies.clear()
    response = await client.get("/optout", headers={"Cookie": f"rt_uid={uid}"})

    assert response.status_code == 200
    assert (await export_user(client, "cookie", uid))["memberships"] == []


# ---- one slot per script, one round trip per hot request ----------------------------------


def sent_by_the_service(slowlog: list[dict[str, Any]]) -> list[list[bytes]]:
    """The commands (split into arguments) the service's connections sent, oldest first.

    Its connections are named ``retarget-<pid>``; the test's own are not named."""
    ours = [e for e in slowlog if e.get("client_name", b"").startswith(b"retarget-")]
    return [e["command"].split(b" ") for e in sorted(ours, key=lambda e: e["start_time"])]


def script_shas() -> dict[str, str]:
    """SHA1 of each script file: what EVALSHA names it by."""
    return {
        hashlib.sha1(  # noqa: S324 - Redis names scripts by SHA1
            files("retarget.store").joinpath(f"{name}.lua").read_bytes()
        ).hexdigest(): name
        for name in SCRIPTS
    }


async def test_every_script_call_keeps_its_keys_in_one_slot(
    settings: Settings, clock: FrozenClock, redis: RedisCluster, cluster: LocalCluster
) -> None:
    """Every command the service sends is logged by the node that runs it (SLOWLOG with a
    zero threshold); for each EVALSHA, the KEYS it names hash to one slot."""
    servers = await nodes(cluster)
    for server in servers:
        await server.config_set("slowlog-log-slower-than", 0)
        await server.config_set("slowlog-max-len", 100_000)
        await server.slowlog_reset()
    try:
        async with serving(settings, clock) as client:
            shop = await open_shop(client)
            await campaign_capped_at(client, shop, 1)
            advertiser = {"id": shop.advertiser_id, "s2s_secret": shop.s2s_secret}
            for uid in (await buyer_on_each_master(redis)).values():
                await purchase(client, shop.pixel_id, uid)
                event = {"event_id": "o-1", "ts": int(clock.now()), "user": {"cookie": uid}}
                await post_events(client, advertiser, [event], clock)
                ad = ad_in(await decide(client, shop.api_key, uid))
                assert ad is not None
                await client.get(urlsplit(ad["impression_url"]).path)
                await client.get(urlsplit(ad["click_url"]).path)
                await export_user(client, "cookie", uid)
                await client.delete(f"/v1/users/cookie/{uid}", headers=ADMIN)
        entries = [entry for server in servers for entry in await server.slowlog_get(100_000)]
    finally:
        for server in servers:
            await server.config_set("slowlog-log-slower-than", 10_000)
            await server.aclose()

    shas = script_shas()
    called: dict[str, int] = {}
    for command in sent_by_the_service(entries):
        if command[0].upper() not in (b"EVALSHA", b"EVAL"):
            continue
        name = shas.get(command[1].decode(), command[1].decode())
        script_keys = command[3 : 3 + int(command[2])]
        assert len({key_slot(key) for key in script_keys}) == 1, (name, script_keys)
        called[name] = called.get(name, 0) + 1
    assert set(called) == set(SCRIPTS), called


async def test_each_hot_request_on_a_cluster_costs_exactly_one_redis_command(
    settings: Settings, clock: FrozenClock, redis: RedisCluster, cluster: LocalCluster
) -> None:
    """Counted by the nodes: with a zero SLOWLOG threshold each node logs every command a
    client sent it (not those a script runs), and the service's connections carry its
    client name. Background polls are pushed out of the way by an interval of an hour."""
    quiet = settings.model_copy(
        update={"catalog_refresh_seconds": 3600, "counters_flush_seconds": 3600}
    )
    servers = await nodes(cluster)

    async def commands_of(request: Awaitable[httpx.Response]) -> list[bytes]:
        for server in servers:
            await server.slowlog_reset()
        assert (await request).status_code < 400
        entries = [entry for server in servers for entry in await server.slowlog_get(1000)]
        return [command[0].upper() for command in sent_by_the_service(entries)]

    try:
        async with serving(quiet, clock) as client:
            shop = await open_shop(client)
            await campaign_capped_at(client, shop, 5)
            uid = await purchase(client, shop.pixel_id)
            ad = ad_in(await decide(client, shop.api_key, uid))  # loads the scripts
            assert ad is not None
            await client.get(urlsplit(ad["impression_url"]).path)
            for server in servers:
                await server.config_set("slowlog-log-slower-than", 0)

            pixel = await commands_of(fire_pixel(client, shop.pixel_id, uid, cat="books"))
            decision = await commands_of(decide(client, shop.api_key, uid))
            click = await commands_of(client.get(urlsplit(ad["click_url"]).path))
    finally:
        for server in servers:
            await server.config_set("slowlog-log-slower-than", 10_000)
            await server.aclose()

    assert pixel == [b"EVALSHA"]
    assert decision == [b"EVALSHA"]
    assert click == [b"EVALSHA"]


async def test_scripts_a_cluster_forgot_are_loaded_again_on_the_node_that_runs_them(
    client: httpx.AsyncClient, redis: RedisCluster, clock: FrozenClock
) -> None:
    """After SCRIPT FLUSH (as after a node restart) the first EVALSHA answers NOSCRIPT and
    the service loads the script on that node and runs it, losing nothing."""
    shop = await open_shop(client)
    await campaign_capped_at(client, shop, 1)
    buyers = await buyer_on_each_master(redis)
    advertiser = {"id": shop.advertiser_id, "s2s_secret": shop.s2s_secret}
    await redis.script_flush()  # on every master

    first, *rest = buyers.values()
    pixel = await fire_pixel(client, shop.pixel_id, first, pn="Dune", cat="books")
    await redis.script_flush()  # on every master
    events = [
        {"event_id": f"o-{i}", "ts": int(clock.now()), "user": {"cookie": uid}, "category": "books"}
        for i, uid in enumerate(rest)
    ]
    batch = await post_events(client, advertiser, events, clock)
    await redis.script_flush()  # on every master

    assert pixel.status_code == 200
    assert batch.status_code == 200, batch.text
    for uid in buyers.values():
        assert ad_in(await decide(client, shop.api_key, uid)) is not None, uid


# ---- operations ------------------------------------------------------------------------------


async def test_readyz_answers_200_when_every_master_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
async def test_probes_without_redis_answer_on_a_cluster(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path)).status_code == 200


# ---- a real ``retarget serve`` -------------------------------------------------------------


@pytest.mark.e2e
async def test_retarget_serve_pointed_at_a_cluster_serves_a_buyer_until_the_cap(
    cluster: LocalCluster, redis: RedisCluster, tmp_path: Path
) -> None:
    """The service as an operator runs it: two settings, nothing else, real time."""
    env = service_env(
        tmp_path,
        redis_url=cluster.url,
        redis_cluster="true",
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret-key",
        decision_deadline_ms="2000",
    )
    service = Service(env, tmp_path / "service.log")
    try:
        await asyncio.to_thread(service.wait_ready)
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as client:
            shop = await open_shop(client)
            campaign = await campaign_capped_at(client, shop, 2)
            for uid in (await buyer_on_each_master(redis)).values():
                await purchase(client, shop.pixel_id, uid)
                first = ad_in(await decide(client, shop.api_key, uid))
                second = ad_in(await decide(client, shop.api_key, uid))
                capped = await decide(client, shop.api_key, uid)
                tracked = await client.get(urlsplit(first["impression_url"]).path)

                assert first is not None
                assert first["campaign_id"] == campaign["id"]
                assert second is not None
                assert ad_in(capped) is None
                assert tracked.status_code == 200
            assert (await client.get("/readyz")).status_code == 200
    finally:
        service.reap()
