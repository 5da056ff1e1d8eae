"""The cluster tests' harness: one real three-master Redis Cluster per test module.

``settings`` and ``redis`` are overridden here, so the suite's ``app`` and ``client``
fixtures run the whole service against the cluster, unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster

from retarget.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.redis_cluster import LocalCluster, running_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three masters on free loopback ports, shared by the tests of one module (~3 s)."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture
async def redis(cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    """A cluster client of the test's own; every master starts the test empty."""
    client = RedisCluster.from_url(cluster.url)
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    await client.aclose()


@pytest.fixture
def settings(cluster: LocalCluster, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=cluster.url,
        redis_cluster=True,
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret-key",
        data_dir=tmp_path,
        decision_deadline_ms=2000,  # as in tests/conftest.py: CI is a busy machine
    )
