"""A master of the cluster crashes: its users get a fast no-fill, the others still get ads.

This module's cluster runs with ``cluster-require-full-coverage no`` (what an operator sets
to keep the live masters serving while one is down); each test brings the killed master
back before it ends, so the next test starts with a whole cluster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio.cluster import RedisCluster

from retarget.clock import FrozenClock
from retarget.embedded_redis import free_port
from retarget.settings import Settings
from retarget.store import keys
from tests.cluster.test_cluster import ad_in, buyer_on_each_master, campaign_capped_at
from tests.conftest import ADMIN_TOKEN
from tests.helpers import ADMIN, Shop, decide, open_shop, purchase, serving
from tests.redis_cluster import LocalCluster, running_cluster

NO_FILL = "x-retarget-no-fill"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), full_coverage=False) as started:
        yield started


async def buyers_and_a_master_to_kill(
    client: httpx.AsyncClient, redis: RedisCluster
) -> tuple[Shop, dict[int, str], int]:
    """A shop with a campaign, a buyer on each master, and a master not holding ``{cfg}``."""
    shop = await open_shop(client)
    await campaign_capped_at(client, shop, 10)
    buyers = await buyer_on_each_master(redis)
    for uid in buyers.values():
        await purchase(client, shop.pixel_id, uid)
    config_node = redis.get_node_from_key(keys.CONFIG_VERSION)
    assert config_node is not None
    victim = next(port for port in buyers if port != config_node.port)
    return shop, buyers, victim


async def test_the_buyers_of_a_dead_master_get_a_fast_no_fill_and_the_others_their_ads(
    client: httpx.AsyncClient, redis: RedisCluster, cluster: LocalCluster
) -> None:
    shop, buyers, victim = await buyers_and_a_master_to_kill(client, redis)

    cluster.kill(victim)
    try:
        started = time.perf_counter()
        lost = await decide(client, shop.api_key, buyers[victim])
        elapsed = time.perf_counter() - started
        served = {
            port: ad_in(await decide(client, shop.api_key, uid))
            for port, uid in buyers.items()
            if port != victim
        }
        ready = await client.get("/readyz")
    finally:
        cluster.restart(victim)

    assert ad_in(lost) is None
    assert lost.headers[NO_FILL] == "redis_error"
    assert elapsed < 1.0  # a refused connection, not the 2 s decision deadline
    assert all(served.values()), served
    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "redis_unavailable"


async def test_once_the_master_is_back_decisions_and_readiness_recover_by_themselves(
    client: httpx.AsyncClient, redis: RedisCluster, cluster: LocalCluster
) -> None:
    shop, buyers, victim = await buyers_and_a_master_to_kill(client, redis)
    cluster.kill(victim)
    await decide(client, shop.api_key, buyers[victim])  # fails: the client drops the node

    cluster.restart(victim)
    # The node kept no data (no persistence in tests): its buyer must buy again.
    await purchase(client, shop.pixel_id, buyers[victim])
    response = await decide(client, shop.api_key, buyers[victim])

    assert ad_in(response) is not None
    assert (await client.get("/readyz")).status_code == 200


async def test_with_no_node_reachable_the_service_starts_and_answers_503_not_500(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """redis-py says "cannot connect to the cluster" with an exception outside RedisError;
    the service must treat it as what it is, Redis down."""
    nowhere = Settings(
        redis_url=f"redis://127.0.0.1:{free_port()}",
        redis_cluster=True,
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret-key",
        data_dir=tmp_path,
    )

    async with serving(nowhere, clock) as client:
        ready = await client.get("/readyz")
        created = await client.post(
            "/v1/advertisers", json={"name": "Shop", "domain": "shop.example.com"}, headers=ADMIN
        )

    assert ready.status_code == 503
    assert ready.json()["error"]["code"] == "redis_unavailable"
    assert created.status_code == 503
    assert created.json()["error"]["code"] == "unavailable"
