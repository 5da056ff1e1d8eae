"""``retarget serve`` as an operator runs it: real processes, real redis-server, real signals."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from retarget.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Service, children_of, is_running_redis, run_serve, service_env
from tests.helpers import hits_with_rotating_forwarded_for, open_shop

pytestmark = pytest.mark.e2e

StartService = Callable[[dict[str, str]], Service]


@pytest.fixture
def external_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server the test owns, on a TCP port, as a production Redis would be."""
    server = EmbeddedRedis(tmp_path / "external-redis", port=free_port())
    server.start()
    yield server
    server.stop()


def test_with_no_redis_url_the_service_starts_its_embedded_redis_and_becomes_ready(
    start_service: StartService, tmp_path: Path
) -> None:
    service = start_service(service_env(tmp_path))

    service.wait_ready(timeout=60)

    redis_pid, _ = service.embedded_redis()
    assert children_of(service.pid) == [redis_pid]
    assert is_running_redis(redis_pid)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_after_a_stop_signal_the_service_exits_and_leaves_no_redis_server_behind(
    start_service: StartService, tmp_path: Path, signum: signal.Signals
) -> None:
    service = start_service(service_env(tmp_path))
    service.wait_ready()
    redis_pid, _ = service.embedded_redis()
    assert children_of(service.pid) == [redis_pid]

    service.stop(signum)

    # Checked the moment the service is gone: it stops its redis-server before exiting,
    # so a restart cannot race the old server for the same append-only file.
    assert not is_running_redis(redis_pid)
    assert "embedded redis-server stopped" in service.output


def test_a_key_written_to_the_embedded_redis_survives_a_restart(
    start_service: StartService, tmp_path: Path
) -> None:
    first = start_service(service_env(tmp_path))
    first.wait_ready()
    _, url = first.embedded_redis()
    with redis.Redis.from_url(url, socket_timeout=2) as client:
        client.set("e2e:survives-restart", b"yes")
    first.stop(signal.SIGTERM)

    second = start_service(service_env(tmp_path))
    second.wait_ready()
    _, url = second.embedded_redis()
    with redis.Redis.from_url(url, socket_timeout=2) as client:
        assert client.get("e2e:survives-restart") == b"yes"


def test_with_a_redis_url_the_service_uses_that_redis_and_starts_no_child_process(
    start_service: StartService, tmp_path: Path, external_redis: EmbeddedRedis
) -> None:
    service = start_service(service_env(tmp_path, redis_url=external_redis.url))

    service.wait_ready()

    assert children_of(service.pid) == []
    assert "embedded redis-server" not in service.output
    with redis.Redis.from_url(external_redis.url, socket_timeout=2) as client:
        names = [c["name"] for c in client.client_list()]
    assert f"retarget-{service.pid}" in names


def test_readyz_is_503_within_a_second_when_redis_stops_and_200_once_it_is_back(
    start_service: StartService, tmp_path: Path, external_redis: EmbeddedRedis
) -> None:
    service = start_service(service_env(tmp_path, redis_url=external_redis.url))
    service.wait_ready()

    external_redis.stop()
    started = time.monotonic()
    response = service.readyz()
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "redis_unavailable"
    assert elapsed < 1.0

    external_redis.start()  # same directory, same port
    deadline = time.monotonic() + 5
    while service.readyz().status_code != 200:
        assert time.monotonic() < deadline, "/readyz stayed 503 after Redis came back"
        time.sleep(0.05)
    assert service.process.poll() is None


def test_a_malformed_redis_url_stops_serve_with_one_line_naming_it(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_serve(service_env(tmp_path, redis_url="nonsense"))
    elapsed = time.monotonic() - started

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "RETARGET_REDIS_URL" in lines[0]
    assert elapsed < 10


def test_production_without_an_admin_token_stops_serve_with_one_line_naming_it(
    tmp_path: Path,
) -> None:
    result = run_serve(service_env(tmp_path, env="production", secret_key="configured"))

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "RETARGET_ADMIN_TOKEN" in lines[0]
    assert not (tmp_path / "redis").exists()


async def test_a_rotating_x_forwarded_for_from_a_local_untrusted_peer_earns_no_extra_pixel_hits(
    start_service: StartService, tmp_path: Path, external_redis: EmbeddedRedis
) -> None:
    """Through the real server: the peer (127.0.0.1) is no configured proxy, so its
    X-Forwarded-For is ignored and every hit counts against 127.0.0.1."""
    service = start_service(
        service_env(
            tmp_path / "data",
            redis_url=external_redis.url,
            admin_token=ADMIN_TOKEN,
            pixel_hits_per_ip_per_minute="5",
        )
    )
    service.wait_ready()
    async with httpx.AsyncClient(base_url=service.base_url, timeout=5) as client:
        shop = await open_shop(client)
        statuses = await hits_with_rotating_forwarded_for(client, shop.pixel_id, 20)

    assert statuses.count(200) == 5
    assert set(statuses) == {200, 429}
