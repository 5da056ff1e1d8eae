"""The test harness: a real redis-server per session, a clean database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import Redis

from retarget.app import create_app
from retarget.clock import FrozenClock
from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.settings import Settings

ADMIN_TOKEN = "test-admin-token"
# 2027-01-15 08:00:00 UTC: a fixed "now" that tests move forward explicitly.
T0 = 1_800_000_000.0


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One real redis-server on a free loopback port, found the way the service finds it."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def settings(redis_server: EmbeddedRedis, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_server.url,
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret-key",
        data_dir=tmp_path,
        # CI shares two cores with the whole suite: a 50 ms deadline there turns an
        # occasional scheduling hiccup into a no-fill. Tests of the deadline set their own.
        decision_deadline_ms=2000,
        # Likewise Redis timeouts count by the wall clock, including the time the event loop
        # spends on the test's other requests: 100 concurrent requests, each opening a
        # connection, on a busy machine would turn into timeouts, then spooled events (or
        # 503s before there was a spool). Fault tests set their own.
        redis_connect_timeout=2.0,
        redis_socket_timeout=2.0,
    )


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock, redis: Redis) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with LifespanManager(application) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


@pytest.fixture
def admin() -> dict[str, str]:
    """Headers of the admin API."""
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
