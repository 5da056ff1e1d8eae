"""Pure ASGI front door for the hot paths.

The decision, the pixel and the tracking beacons go straight from uvicorn to their handlers
(``RetargetApp.__call__``), skipping FastAPI's and Starlette's app, routing, dependency
solving, middleware and Request/Response objects: measured with py-spy under wrk, that
machinery was about half of a decision's CPU, and Starlette's header and state wrappers
most of what remained around the handler. A handler gets a ``HotRequest`` (raw headers,
query and body, the lifespan state) and returns a ``HotResponse`` (status, header bytes,
body), which is sent as two ASGI messages. The FastAPI routes declaring the same paths
(for OpenAPI) call the same handlers. Errors become the same JSON bodies as everywhere
else; the request timers and the body size limit are applied here, inline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from retarget.asgi import HotRequest, HotResponse
from retarget.errors import RetargetError
from retarget.metrics import Metrics
from retarget.routes import decisions, pixel, tracking
from retarget.routes.errors import (
    domain_error_response,
    http_error_response,
    internal_error_response,
    storage_error_response,
)

log = logging.getLogger("retarget")
TEMPLATE_KEY = "retarget.route"

Handler = Callable[[HotRequest], Awaitable[HotResponse | Response]]


def _segment(path: str, prefix: str, suffix: str = "") -> str | None:
    """The single path segment between ``prefix`` and ``suffix``, if the path is that."""
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    value = path[len(prefix) : len(path) - len(suffix)]
    return value if value and "/" not in value else None


def route(method: str, path: str) -> tuple[str, Handler] | None:
    """(route template, handler) for a hot path, else None."""
    if method == "POST" and path == "/v1/decisions":
        return "/v1/decisions", decisions.serve_decision
    if method != "GET":
        return None
    if (pixel_id := _segment(path, "/px/", ".gif")) is not None:
        return "/px/{pixel_id}.gif", lambda request: pixel.serve_pixel(pixel_id, request)
    if (token := _segment(path, "/t/imp/")) is not None:
        return "/t/imp/{token}", lambda request: tracking.serve_impression(token, request)
    if (token := _segment(path, "/t/click/")) is not None:
        return "/t/click/{token}", lambda request: tracking.serve_click(token, request)
    return None


def route_template(scope: Scope) -> str:
    """The route a request was served by, for metrics labels (never the raw path)."""
    if template := scope.get(TEMPLATE_KEY):
        return str(template)
    matched = scope.get("route")
    return str(getattr(matched, "path", "unmatched"))


class HotPaths:
    """Serves the hot paths; ``RetargetApp`` hands it the requests ``route`` matches."""

    def __init__(self, metrics: Metrics, body_limit: int) -> None:
        self.metrics = metrics
        self.body_limit = body_limit
        self._state: SimpleNamespace | None = None

    async def serve(
        self, found: tuple[str, Handler], scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        template, handler = found
        scope[TEMPLATE_KEY] = template
        raw_state = scope["state"]
        state = self._state
        if state is None or state.decider is not raw_state.get("decider"):
            # The lifespan's objects, the same for every request: wrapped once per lifespan.
            state = self._state = SimpleNamespace(**raw_state)
        request = HotRequest(scope, receive, state, self.body_limit)
        try:
            response = await handler(request)
        except RetargetError as exc:
            response = domain_error_response(exc)
        except HTTPException as exc:
            response = http_error_response(exc, scope["method"], scope["path"])
        except RedisError as exc:
            log.warning("redis error on %s: %s", scope["path"][:64], exc)
            response = storage_error_response()
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"][:64])
            response = internal_error_response()
        try:
            await response(scope, receive, send)
        finally:
            status = response.status if isinstance(response, HotResponse) else response.status_code
            answered = time.perf_counter()
            self.metrics.hot_request(
                template,
                scope["method"],
                status,
                answered - started,
                answered - (request.received or started),
            )
