"""The purchase pixel: ``GET /px/{pixel_id}.gif``. A hot path: one Redis round trip."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from retarget import pixel, privacy, users
from retarget.asgi import GIF, HotRequest, HotResponse
from retarget.attribution import attribute
from retarget.errors import InvalidInput
from retarget.recording import recordings_for

log = logging.getLogger("retarget")
router = APIRouter(tags=["pixel"])

_HEADERS = [(b"cache-control", b"no-store, max-age=0"), (b"pragma", b"no-cache")]
_PARAMS = [
    {
        "name": "ev",
        "in": "query",
        "schema": {"type": "string", "enum": ["purchase", "view", "cart"]},
    },
    {"name": "sku", "in": "query", "schema": {"type": "string", "maxLength": 128}},
    {"name": "pn", "in": "query", "schema": {"type": "string", "maxLength": 128}},
    {"name": "cat", "in": "query", "schema": {"type": "string", "maxLength": 128}},
    {
        "name": "val",
        "in": "query",
        "schema": {"type": "string", "pattern": r"^\d{1,10}(\.\d{1,4})?$"},
    },
    {"name": "cur", "in": "query", "schema": {"type": "string", "pattern": "^[A-Z]{3}$"}},
    {"name": "oid", "in": "query", "schema": {"type": "string", "maxLength": 128}},
]


def _gif(status: int = 200, error: str | None = None) -> HotResponse:
    headers = list(_HEADERS)
    if error is not None:
        headers.append((b"x-retarget-error", error.encode("latin-1", "replace")))
    return HotResponse(pixel.GIF, GIF, status, headers)


@router.get(
    "/px/{pixel_id}.gif",
    summary="Purchase pixel: records the event, answers a 1x1 transparent GIF",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}}, 400: {}, 404: {}, 503: {}},
    openapi_extra={"parameters": _PARAMS},
)
async def pixel_hit(pixel_id: str, request: Request) -> Response:
    """Always a GIF, so a page never shows a broken image; errors in ``X-Retarget-Error``."""
    return (await serve_pixel(pixel_id, HotRequest.of(request))).starlette()


async def serve_pixel(pixel_id: str, request: HotRequest) -> HotResponse:
    """The hot path (see hot_paths): consent, parse, record (one round trip), the GIF."""
    state = request.state
    cookies = request.cookies
    metrics = state.metrics
    if not privacy.may_track(request.header(b"sec-gpc"), cookies.get(privacy.OPT_OUT_COOKIE)):
        metrics.pixel("opted_out")
        return _gif()
    catalog = state.catalog.current
    if not catalog.loaded:
        metrics.pixel("unavailable")
        return _gif(503, "unavailable: configuration not loaded")
    advertiser = catalog.by_pixel.get(pixel_id)
    if advertiser is None:
        metrics.pixel("unknown_pixel")
        return _gif(404, "pixel_id: unknown pixel")
    now = state.clock.now()
    try:
        event = pixel.parse_hit(request.query, advertiser.id, now)
    except InvalidInput as exc:
        metrics.pixel("invalid")
        return _gif(400, f"{exc.field}: {exc.message}")

    uid = users.cookie_id_or_none(cookies.get(users.COOKIE_NAME)) or users.new_cookie_id()
    user = users.UserRef(users.Namespace.COOKIE, uid)
    (recording,) = recordings_for(event, [user], catalog, now)
    started = time.perf_counter()
    try:
        recorded = await state.users.record(recording, now)
        response = _gif()
    except (RedisError, OSError) as exc:
        log.warning("pixel not recorded: %s", type(exc).__name__)
        metrics.redis_call("record_event", time.perf_counter() - started, failed=True)
        metrics.pixel("unavailable")
        response = _gif(503, "unavailable: try again")
    else:
        metrics.redis_call("record_event", time.perf_counter() - started)
        metrics.pixel("recorded" if recorded.new else "duplicate")
        if recorded.touches and (conversion := attribute(event, recorded.touches, advertiser)):
            state.counters.conversion(conversion)
            metrics.conversion(conversion.touch.kind)
    # Written by hand: Starlette's set_cookie goes through http.cookies, a measurable share
    # of a pixel hit. The id is ours (URL-safe base64), the domain comes from settings.
    domain = state.settings.cookie_domain
    cookie = (
        f"{users.COOKIE_NAME}={uid}; Max-Age={users.COOKIE_MAX_AGE}; Path=/; "
        + (f"Domain={domain}; " if domain else "")
        + "Secure; HttpOnly; SameSite=None"
    )
    response.headers.append((b"set-cookie", cookie.encode("latin-1")))
    return response
