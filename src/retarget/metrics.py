"""Prometheus metrics behind a small interface; the only module that imports prometheus_client.

Names share the ``retarget_`` prefix, use base units and ``_total`` on counters; labels are
route templates and small enums only (no user, URL or id), so cardinality stays bounded.
With several workers the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` aggregates
every worker's files.
"""

from __future__ import annotations

import asyncio
import os
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retarget.clock import wait_or_stop

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# 0.06: the default decision deadline (50 ms) plus 10 ms, the bound a decision must keep.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.06, 0.1, 0.25, 0.5, 1, 2.5)


class _Pending:
    """One histogram child's observations not yet handed to prometheus_client.

    prometheus_client's ``observe`` costs about 1.5 µs (a lock, a bucket search in Python,
    two value updates; mmap writes in multi-process mode), and a decision made four such
    updates: 8 µs of its 80 in-process. Here an observation is a bisect and two additions;
    ``Metrics.sync`` moves them into the child's values before every scrape and, for the
    other workers' scrapes, every second."""

    __slots__ = ("child", "counts", "total")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.counts = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one: +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1  # le: a bound counts
        self.total += seconds

    def sync(self) -> None:
        counts, values = self.counts, self.child._buckets  # its per-bucket (not cumulative)
        for i, count in enumerate(counts):
            if count:
                values[i].inc(count)
                counts[i] = 0
        if self.total:
            self.child._sum.inc(self.total)
            self.total = 0.0


class Metrics:
    """One per app. Each app gets its own registry, so tests can build many apps."""

    def __init__(self, decision_outcomes: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # The hot paths' observations, synced into the registry by ``sync``.
        self._pending: dict[tuple[Any, tuple[str | int, ...]], _Pending] = {}
        r = self.registry
        self._requests = Histogram(
            "retarget_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status class.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._processing = Histogram(
            "retarget_http_request_processing_seconds",
            "Hot paths only (decisions, pixel, tracking): time from the whole request being "
            "in (its body read) to the answer, the service's own time without the client's "
            "upload.",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        decisions = Counter(
            "retarget_decisions_total",
            "Decision requests by outcome: fill, or the no-fill reason.",
            ["outcome"],
            registry=r,
        )
        self._decisions = {o: decisions.labels(o) for o in ("fill", *decision_outcomes)}
        self._decision_counts: dict[str, int] = dict.fromkeys(self._decisions, 0)
        self._pixel = Counter(
            "retarget_pixel_events_total",
            "Pixel hits by result (recorded, duplicate, spooled, opted_out, invalid, "
            "unknown_pixel, unavailable).",
            ["result"],
            registry=r,
        )
        self._events = Counter(
            "retarget_server_events_total",
            "Server-to-server events by result (accepted, duplicate, rejected, spooled).",
            ["result"],
            registry=r,
        )
        conversions = Counter(
            "retarget_conversions_total",
            "Purchases credited to an ad, by kind (click: click-through, view: view-through).",
            ["kind"],
            registry=r,
        )
        self._conversions = {k: conversions.labels(k) for k in ("click", "view")}
        self._redis_seconds = Histogram(
            "retarget_redis_call_duration_seconds",
            "Time of the hot paths' Redis round trips, by operation.",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._redis_errors = Counter(
            "retarget_redis_errors_total",
            "Redis calls of the hot paths that failed or timed out, by operation.",
            ["operation"],
            registry=r,
        )
        self._rate_limited = Counter(
            "retarget_rate_limited_requests_total",
            "Requests refused with a 429, by limit (pixel_ip, pixel_id, decisions, api).",
            ["limit"],
            registry=r,
        )
        self._bots = Counter(
            "retarget_bot_requests_total",
            "Pixel hits and tracking beacons from known bots (served, not recorded), by route.",
            ["route"],
            registry=r,
        )
        self._catalog_version = Gauge(
            "retarget_catalog_version",
            "Configuration version of the in-process catalog.",
            registry=r,
            multiprocess_mode="max",
        )
        self._catalog_loaded = Gauge(
            "retarget_catalog_loaded_timestamp_seconds",
            "When the catalog was last rebuilt (its age: time() - this).",
            registry=r,
            multiprocess_mode="min",
        )

        self._breaker_state = Gauge(
            "retarget_redis_breaker_state",
            "The Redis circuit breaker: 0 closed, 1 half-open, 2 open (the worst worker's).",
            registry=r,
            multiprocess_mode="max",
        )
        self._breaker_transitions = Counter(
            "retarget_redis_breaker_transitions_total",
            "Moves of the Redis circuit breaker, by the state it moved to.",
            ["state"],
            registry=r,
        )
        self._spool_bytes = Gauge(
            "retarget_spool_bytes",
            "Bytes of acknowledged events waiting in the spool for Redis (all workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._spool_records = Counter(
            "retarget_spool_records_total",
            "Spooled events by what happened to them (spooled, replayed, duplicate, full: "
            "refused because the spool was full, so not acknowledged).",
            ["result"],
            registry=r,
        )

    def decision(self, no_fill: str | None) -> None:
        self._decision_counts[no_fill or "fill"] += 1

    def pixel(self, result: str) -> None:
        self._child(self._pixel, result).inc()

    def server_events(
        self, accepted: int, duplicates: int, rejected: int, spooled: int = 0
    ) -> None:
        for result, count in (
            ("accepted", accepted),
            ("duplicate", duplicates),
            ("spooled", spooled),
        ):
            if count:
                self._events.labels(result).inc(count)
        if rejected:
            self._events.labels("rejected").inc(rejected)

    def conversion(self, kind: str) -> None:
        self._conversions[kind].inc()

    def redis_call(self, operation: str, seconds: float, failed: bool = False) -> None:
        self._histogram(self._redis_seconds, operation).observe(seconds)
        if failed:
            self._child(self._redis_errors, operation).inc()

    def rate_limited(self, limit: str) -> None:
        self._child(self._rate_limited, limit).inc()

    def bot(self, route: str) -> None:
        self._child(self._bots, route).inc()

    def breaker(self, state: str) -> None:
        self._breaker_state.set({"closed": 0, "half_open": 1, "open": 2}[state])
        self._breaker_transitions.labels(state).inc()

    def spool(self, result: str, count: int = 1, size_bytes: int | None = None) -> None:
        if count:
            self._child(self._spool_records, result).inc(count)
        if size_bytes is not None:
            self._spool_bytes.set(size_bytes)

    def catalog_loaded(self, version: int) -> None:
        self._catalog_version.set(version)
        self._catalog_loaded.set(time.time())

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._histogram(self._requests, route, method, status).observe(seconds)

    def hot_request(
        self, route: str, method: str, status: int, seconds: float, processing: float
    ) -> None:
        """A hot path's request: its whole time, and its time from the body being in."""
        self._histogram(self._requests, route, method, status).observe(seconds)
        self._histogram(self._processing, route, method, status).observe(processing)

    def _histogram(self, metric: Any, *labels: str | int) -> _Pending:
        """Where to observe ``metric`` for these labels (a status code counts as its class)."""
        key = (metric, labels)
        pending = self._pending.get(key)
        if pending is None:
            names = [f"{v // 100}xx" if isinstance(v, int) else v for v in labels]
            pending = self._pending[key] = _Pending(self._child(metric, *names))
        return pending

    def sync(self) -> None:
        """Hand the hot paths' observations to prometheus_client (to this worker's files,
        in multi-process mode)."""
        for pending in self._pending.values():
            pending.sync()
        counts = self._decision_counts
        for outcome, count in counts.items():
            if count:
                self._decisions[outcome].inc(count)
                counts[outcome] = 0

    async def keep_syncing(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Sync every ``interval`` until ``stop`` is set, and once more then: with several
        workers, a scrape reads the others' files, so theirs must not wait for a scrape."""
        while not await wait_or_stop(stop, interval):
            self.sync()
        self.sync()

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached: the hot paths record a few metrics per request
        and the label lookup (validation, locking) is most of their cost."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def exposition(self) -> tuple[bytes, str]:
        """The text format, aggregated over every worker in multi-process mode."""
        self.sync()
        registry = self.registry
        if os.environ.get(MULTIPROCESS_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST


class RequestTimer:
    """Pure ASGI middleware timing every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics, route_of: object) -> None:
        self.app = app
        self.metrics = metrics
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = self.route_of(scope)  # type: ignore[operator]
            self.metrics.request(route, scope["method"], status, time.perf_counter() - started)
