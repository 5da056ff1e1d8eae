"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from retarget.routes.errors import error_response

router = APIRouter(tags=["operations"])

_OK = b'{"status":"ok"}'


@router.get("/healthz", summary="The process is alive (no I/O)")
async def healthz() -> Response:
    return Response(_OK, media_type="application/json")


@router.get(
    "/readyz",
    summary="Redis answers PING within its timeout",
    responses={503: {"description": "Redis did not answer"}},
)
async def readyz(request: Request) -> Response:
    settings = request.state.settings
    try:
        async with asyncio.timeout(settings.redis_socket_timeout + settings.redis_connect_timeout):
            await request.state.redis.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        reason = type(exc).__name__
        return error_response(503, "redis_unavailable", f"redis did not answer PING: {reason}")
    return Response(_OK, media_type="application/json")


@router.get(
    "/metrics",
    summary="Prometheus metrics (no per-user or per-URL labels)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(request: Request) -> Response:
    body, content_type = request.state.metrics.exposition()
    return Response(body, media_type=content_type)
