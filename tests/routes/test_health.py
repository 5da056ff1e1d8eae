from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from retarget.app import create_app
from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.settings import Settings


async def test_healthz_answers_without_io(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ok_when_redis_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_an_unknown_route_gets_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"
    assert "/no/such/thing" in response.json()["error"]["message"]


async def test_a_wrong_method_gets_a_json_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_a_body_over_the_limit_is_refused_by_its_length(client: httpx.AsyncClient) -> None:
    response = await client.post("/healthz", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "payload_too_large",
        "message": "request body is larger than 65536 bytes",
        "field": "body",
    }


async def test_readyz_is_503_with_a_reason_when_redis_is_down(tmp_path: Path) -> None:
    down = EmbeddedRedis(tmp_path, port=free_port())  # never started: nothing listens
    app = create_app(Settings(redis_url=down.url, admin_token="a", secret_key="b"))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "redis_unavailable"
