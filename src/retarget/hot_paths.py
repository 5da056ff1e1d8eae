"""Pure ASGI front door for the hot paths.

The decision, the pixel and the tracking beacons go straight to their handlers, skipping
FastAPI's routing, dependency solving and exception middleware: measured with py-spy under
wrk, that machinery was about half of a decision's CPU. The handlers are the very functions
the FastAPI routes declare (so OpenAPI documents them, and tests reach them either way);
errors become the same JSON bodies as everywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from retarget.errors import RetargetError
from retarget.routes import decisions, pixel, tracking
from retarget.routes.errors import (
    domain_error_response,
    http_error_response,
    internal_error_response,
    storage_error_response,
)

log = logging.getLogger("retarget")
Handler = Callable[[Request], Awaitable[Response]]
TEMPLATE_KEY = "retarget.route"


def _segment(path: str, prefix: str, suffix: str = "") -> str | None:
    """The single path segment between ``prefix`` and ``suffix``, if the path is that."""
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    value = path[len(prefix) : len(path) - len(suffix)]
    return value if value and "/" not in value else None


def route(method: str, path: str) -> tuple[str, Handler] | None:
    """(route template, handler) for a hot path, else None."""
    if method == "POST" and path == "/v1/decisions":
        return "/v1/decisions", decisions.decide
    if method != "GET":
        return None
    if (pixel_id := _segment(path, "/px/", ".gif")) is not None:
        return "/px/{pixel_id}.gif", lambda request: pixel.pixel_hit(pixel_id, request)
    if (token := _segment(path, "/t/imp/")) is not None:
        return "/t/imp/{token}", lambda request: tracking.impression(token, request)
    if (token := _segment(path, "/t/click/")) is not None:
        return "/t/click/{token}", lambda request: tracking.click(token, request)
    return None


def route_template(scope: Scope) -> str:
    """The route a request was served by, for metrics labels (never the raw path)."""
    if template := scope.get(TEMPLATE_KEY):
        return str(template)
    matched = scope.get("route")
    return str(getattr(matched, "path", "unmatched"))


class HotPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = route(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        scope[TEMPLATE_KEY], handler = found
        try:
            response = await handler(Request(scope, receive))
        except RetargetError as exc:
            response = domain_error_response(exc)
        except HTTPException as exc:  # e.g. the body limit's 413
            response = http_error_response(exc, scope["method"], scope["path"])
        except RedisError as exc:
            log.warning("redis error on %s: %s", scope["path"][:64], exc)
            response = storage_error_response()
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"][:64])
            response = internal_error_response()
        await response(scope, receive, send)
