"""Impression and click tracking: ``GET /t/imp/{token}`` and ``GET /t/click/{token}``."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.responses import RedirectResponse, Response

from retarget import pixel, tracking
from retarget.asgi import HotRequest
from retarget.catalog import Catalog
from retarget.errors import NotFound

log = logging.getLogger("retarget")
router = APIRouter(tags=["tracking"])


async def _count(request: HotRequest, kind: str, claims: tracking.Claims) -> None:
    """Count once per token; a Redis failure loses the count, never the user's page."""
    state = request.state
    try:
        first = await state.tracking.track(kind, claims, state.clock.now())
    except (RedisError, OSError) as exc:
        log.warning("%s not counted: %s", kind, type(exc).__name__)
        return
    if first:
        state.counters.count(
            "impressions" if kind == "imp" else "clicks",
            claims.advertiser_id,
            claims.campaign_id,
            claims.creative_id,
            claims.publisher_id,
            claims.site_category,
        )


def _claims(request: HotRequest, token: str) -> tracking.Claims:
    secret = request.state.settings.secret_key.get_secret_value()
    return tracking.verify(secret, token, request.state.clock.now())


@router.get(
    "/t/imp/{token}",
    summary="Impression beacon: counts once per token, answers a 1x1 GIF",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}}, 422: {"description": "Bad token"}},
)
async def impression(token: str, request: Request) -> Response:
    return await serve_impression(token, HotRequest.of(request))


async def serve_impression(token: str, request: HotRequest) -> Response:
    """The hot path (see hot_paths)."""
    claims = _claims(request, token)  # 422 for a tampered, expired or malformed token
    await _count(request, "imp", claims)
    return Response(pixel.GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get(
    "/t/click/{token}",
    summary="Click: counts once per token, redirects to the creative's stored landing URL",
    response_class=RedirectResponse,
    status_code=302,
    responses={302: {"description": "To the landing URL"}, 422: {}, 404: {}},
)
async def click(token: str, request: Request) -> Response:
    return await serve_click(token, HotRequest.of(request))


async def serve_click(token: str, request: HotRequest) -> Response:
    """The hot path (see hot_paths)."""
    claims = _claims(request, token)
    catalog: Catalog = request.state.catalog.current
    landing_url = _landing_url(catalog, claims)  # from the catalog, never from the request
    await _count(request, "click", claims)
    return RedirectResponse(landing_url, status_code=302, headers={"Cache-Control": "no-store"})


def _landing_url(catalog: Catalog, claims: tracking.Claims) -> str:
    campaign = catalog.campaigns.get(claims.campaign_id)
    for creative in campaign.creatives if campaign else ():
        if creative.id == claims.creative_id:
            return creative.landing_url
    raise NotFound("the ad behind this link no longer exists", field="token")
