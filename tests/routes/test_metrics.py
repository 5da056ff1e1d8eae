"""/metrics: what an operator's Prometheus scrapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from retarget.clock import FrozenClock
from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.settings import Settings
from tests.helpers import bearer, create_campaign, decide, open_shop, purchase, serving

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def samples(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def decisions(metrics: Samples, outcome: str) -> float:
    return metrics.get(("retarget_decisions_total", (("outcome", outcome),)), 0.0)


async def test_a_fill_and_a_no_fill_move_their_own_counters(client: httpx.AsyncClient) -> None:
    shop = await open_shop(client)
    await create_campaign(client, shop.advertiser_id, [shop.audience_id])
    buyer = await purchase(client, shop.pixel_id)
    before = await samples(client)

    filled = await decide(client, shop.api_key, buyer)
    anonymous = await decide(client, shop.api_key, None)

    after = await samples(client)
    assert filled.json()["decisions"]["feed-top"] is not None
    assert anonymous.headers["x-retarget-no-fill"] == "no_user"
    assert decisions(after, "fill") == decisions(before, "fill") + 1
    assert decisions(after, "no_user") == decisions(before, "no_user") + 1
    assert decisions(after, "redis_error") == decisions(before, "redis_error")


async def test_a_redis_error_moves_the_redis_error_counters(
    tmp_path: Path, settings: Settings, clock: FrozenClock
) -> None:
    redis = EmbeddedRedis(tmp_path / "redis", port=free_port())
    redis.start()
    try:
        own = settings.model_copy(update={"redis_url": redis.url})
        async with serving(own, clock) as client:
            shop = await open_shop(client)
            await create_campaign(client, shop.advertiser_id, [shop.audience_id])
            buyer = await purchase(client, shop.pixel_id)
            redis.stop()

            response = await decide(client, shop.api_key, buyer)
            after = await samples(client)
    finally:
        redis.stop()

    assert response.headers["x-retarget-no-fill"] == "redis_error"
    assert decisions(after, "redis_error") == 1
    errors = after.get(("retarget_redis_errors_total", (("operation", "decide"),)), 0.0)
    assert errors == 1


async def test_pixel_results_and_request_latency_are_counted(client: httpx.AsyncClient) -> None:
    shop = await open_shop(client)

    await purchase(client, shop.pixel_id)
    await client.get("/px/px_unknown.gif")
    after = await samples(client)

    assert after[("retarget_pixel_events_total", (("result", "recorded"),))] == 1
    assert after[("retarget_pixel_events_total", (("result", "unknown_pixel"),))] == 1
    pixel_requests = (
        "retarget_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/px/{pixel_id}.gif"), ("status", "2xx")),
    )
    assert after[pixel_requests] == 1


async def test_no_label_carries_an_id_or_a_raw_path(client: httpx.AsyncClient) -> None:
    shop = await open_shop(client)
    await purchase(client, shop.pixel_id)
    await client.get("/no/such/path/12345")

    text = (await client.get("/metrics")).text

    assert shop.pixel_id not in text
    assert "12345" not in text
    assert 'route="unmatched"' in text


async def test_a_slow_upload_counts_in_request_duration_but_not_in_processing_time(
    client: httpx.AsyncClient,
) -> None:
    """Processing time starts once the body is in: what the service itself took."""
    shop = await open_shop(client)
    buyer = await purchase(client, shop.pixel_id)
    body = orjson.dumps(
        {"user": {"id": buyer, "namespace": "cookie"}, "placements": [{"id": "feed-top"}]}
    )

    async def slow_upload() -> AsyncIterator[bytes]:
        await asyncio.sleep(0.3)  # the client's upload, not the service's work
        yield body

    response = await client.post(
        "/v1/decisions", content=slow_upload(), headers=bearer(shop.api_key)
    )
    after = await samples(client)

    assert response.status_code == 200
    labels = (("method", "POST"), ("route", "/v1/decisions"), ("status", "2xx"))

    def bucket(name: str, le: str) -> float:
        return after[(f"retarget_http_request_{name}_bucket", tuple(sorted((*labels, ("le", le)))))]

    assert bucket("duration_seconds", "+Inf") == bucket("processing_seconds", "+Inf") == 1
    assert bucket("duration_seconds", "0.25") == 0
    assert bucket("processing_seconds", "0.25") == 1
