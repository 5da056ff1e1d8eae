"""The front door's rate limits, checked by the app before any route (hot path or not).

Which limit a request spends from, keyed by what:

* ``GET /px/{pixel_id}.gif``: the client IP's bucket, then the pixel id's bucket;
* ``POST /v1/decisions`` and the browser tags (``/v1/ad``, ``/v1/ad.js``, ``/v1/vast``):
  the decisions bucket of the bearer key, or of the client IP when there is none;
* every other ``/v1/`` API call: the API bucket of the bearer key, or of the client IP;
* nothing else (health, metrics, docs, tracking beacons, which count once per signed token).

A refused pixel hit still gets its GIF (status 429, ``X-Retarget-Error``), so a page never
shows a broken image; a refused API call gets the usual JSON error with ``Retry-After``.
Either way the request goes no further: nothing is recorded, nothing touches Redis.
The buckets themselves are in ``rate_limits``; the client IP comes from ``client_ip``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import Scope

from retarget import pixel
from retarget.client_ip import TrustedProxies, parse_networks
from retarget.metrics import Metrics
from retarget.rate_limits import ALLOWED, TokenBuckets, Verdict
from retarget.routes.errors import error_response
from retarget.settings import Settings

_DECISION_PATHS = frozenset({"/v1/decisions", "/v1/ad", "/v1/ad.js", "/v1/vast"})


class Limits:
    """Every rate limit of one worker, and how a request is mapped onto them."""

    def __init__(self, settings: Settings, now: Callable[[], float], metrics: Metrics) -> None:
        self.metrics = metrics
        self.proxies = TrustedProxies(parse_networks(settings.trusted_proxies))
        self.pixel_ip = TokenBuckets("pixel_ip", settings.pixel_hits_per_ip_per_minute, now)
        self.pixel_id = TokenBuckets("pixel_id", settings.pixel_hits_per_pixel_per_minute, now)
        self.decisions = TokenBuckets("decisions", settings.decisions_per_key_per_minute, now)
        self.api = TokenBuckets("api", settings.api_requests_per_key_per_minute, now)

    def client_ip(self, scope: Scope) -> str:
        peer = scope.get("client")
        forwarded = (
            [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
            if self.proxies.networks
            else []
        )
        return self.proxies.client_ip(peer[0] if peer else None, forwarded)

    def refusal(self, scope: Scope) -> Response | None:
        """A 429 for an HTTP request over one of its limits (counted in the metrics), else
        None: the request may go on."""
        limit, verdict = self.check(scope)
        if verdict.allowed:
            return None
        self.metrics.rate_limited(limit.name)
        return refusal(limit, verdict, scope["path"])

    def check(self, scope: Scope) -> tuple[TokenBuckets, Verdict]:
        """The first limit this request exceeds and its verdict (ALLOWED if none)."""
        path: str = scope["path"]
        if path.startswith("/px/") and path.endswith(".gif"):
            verdict = self.pixel_ip.take(self.client_ip(scope))
            if not verdict.allowed:
                return self.pixel_ip, verdict
            return self.pixel_id, self.pixel_id.take(path[4:-4])
        if not path.startswith("/v1/"):
            return self.api, ALLOWED
        limit = self.decisions if path in _DECISION_PATHS else self.api
        if limit.unlimited:
            return limit, ALLOWED
        return limit, limit.take(_key(scope) or "ip:" + self.client_ip(scope))


def _key(scope: Scope) -> str | None:
    """The bearer credential, hashed (no secret kept in the buckets, and keys stay short)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return _bucket_of(value)
    return None


@functools.lru_cache(maxsize=4096)  # a publisher sends the same key with every decision
def _bucket_of(authorization: bytes) -> str | None:
    scheme, _, token = authorization.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return None
    return "key:" + hashlib.blake2b(token, digest_size=12).hexdigest()


def refusal(limit: TokenBuckets, verdict: Verdict, path: str) -> Response:
    retry_after = {"Retry-After": str(verdict.retry_after)}
    if path.startswith("/px/"):
        by = "address" if limit.name == "pixel_ip" else "pixel"
        headers = {
            "Cache-Control": "no-store, max-age=0",
            "X-Retarget-Error": f"rate_limited: too many hits from this {by}",
            **retry_after,
        }
        return Response(pixel.GIF, status_code=429, media_type="image/gif", headers=headers)
    message = f"too many requests, retry in {verdict.retry_after} s"
    return error_response(429, "rate_limited", message, headers=retry_after)
