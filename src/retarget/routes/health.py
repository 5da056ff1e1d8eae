"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from starlette.responses import Response

from retarget.store.client import RedisClient

router = APIRouter(tags=["operations"])

_OK = b'{"status":"ok"}'


@router.get("/healthz", summary="The process is alive (no I/O)")
async def healthz() -> Response:
    return Response(_OK, media_type="application/json")


@router.get(
    "/readyz",
    summary="Redis answers PING within its timeout; the circuit breaker's state and the spool",
    responses={503: {"description": "Redis did not answer"}},
)
async def readyz(request: Request) -> Response:
    """200 while Redis answers PING, else 503 with the reason. Both bodies carry ``breaker``
    (closed, half_open, open) and ``spool_bytes`` (acknowledged events waiting for Redis)."""
    state = request.state
    settings = state.settings
    extra = {"breaker": state.breaker.state.value, "spool_bytes": state.spool.size}
    try:
        async with asyncio.timeout(settings.redis_socket_timeout + settings.redis_connect_timeout):
            await _ping(state.redis)
    except (RedisError, OSError, TimeoutError) as exc:
        reason = type(exc).__name__
        message = f"redis did not answer PING: {reason}"
        body = {"error": {"code": "redis_unavailable", "message": message, "field": None}}
        body |= extra
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    return Response(orjson.dumps({"status": "ok"} | extra), media_type="application/json")


async def _ping(redis: RedisClient) -> None:
    """PING, and once more if the pooled connection had broken while idle (a Redis node
    restarted since its last use): redis-py drops that connection and the second PING opens
    a new one, so a probe does not report a restart that is over as Redis being down."""
    try:
        await redis.ping()
    except RedisConnectionError:
        await redis.ping()


@router.get(
    "/metrics",
    summary="Prometheus metrics (no per-user or per-URL labels)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    body, content_type = request.state.metrics.exposition()
    return Response(body, media_type=content_type)
