"""The app factory: ``create_app(settings)`` builds the app; its lifespan owns the clients."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, TypedDict

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from retarget.abuse import Limits
from retarget.advertisers import MAX_WINDOW_DAYS
from retarget.audiences import DAY
from retarget.body_limit import BodyLimit
from retarget.breaker import Breaker, BreakerState
from retarget.catalog import LiveCatalog
from retarget.clock import Clock, SystemClock
from retarget.decider import Decider
from retarget.decisions import DECISION_REQUEST, NoFill
from retarget.hot_paths import HotPaths, route, route_template
from retarget.metrics import Metrics, RequestTimer
from retarget.openapi import declare_errors
from retarget.recorder import Recorder
from retarget.routes import (
    advertisers,
    audiences,
    campaigns,
    dashboard,
    decisions,
    delivery,
    demo,
    errors,
    events,
    health,
    pixel,
    privacy,
    publishers,
    reports,
    tracking,
)
from retarget.server_events import EventBatch
from retarget.settings import Settings, load_settings, with_secrets
from retarget.spool import Spool
from retarget.store.client import (
    RedisClient,
    command_batches,
    create_autopipeline,
    create_redis,
)
from retarget.store.config import ConfigStore
from retarget.store.counters import Counters
from retarget.store.decisions import DecisionStore
from retarget.store.reports import ReportStore
from retarget.store.tracking import TrackingStore
from retarget.store.users import UserStore

log = logging.getLogger("retarget")


class State(TypedDict):
    """What every request sees as ``request.state``."""

    settings: Settings
    clock: Clock
    redis: RedisClient
    catalog: LiveCatalog
    users: UserStore
    breaker: Breaker
    spool: Spool
    recorder: Recorder
    counters: Counters
    metrics: Metrics
    decider: Decider
    tracking: TrackingStore
    reports: ReportStore


class RetargetApp(FastAPI):
    """FastAPI, except for the hot paths: uvicorn's requests for those go straight to
    ``HotPaths`` (see hot_paths); every other request passes pure ASGI layers, request
    timing and the body size limit, then FastAPI's own stack. The rate limits come first,
    for both."""

    body_limits: tuple[int, dict[str, int]] = (64 * 1024, {})
    metrics: Metrics
    hot_paths: HotPaths
    limits: Limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if (refused := self.limits.refusal(scope)) is not None:  # before any body is read
                await refused(scope, receive, send)
                return
            if found := route(scope["method"], scope["path"]):
                await self.hot_paths.serve(found, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        default, per_path = self.body_limits
        inner = BodyLimit(super().build_middleware_stack(), default, per_path)
        return RequestTimer(inner, self.metrics, route_template)


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """Build the service for ``settings`` (which must name a Redis URL and both secrets)."""
    clock = clock or SystemClock()
    metrics = Metrics([reason.value for reason in NoFill])

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        # Threads run beside the event loop here (spool reads and writes, catalog builds);
        # one holding the GIL keeps the loop waiting up to the switch interval, 5 ms by
        # default: a tenth of a decision's deadline. 1 ms caps that wait.
        sys.setswitchinterval(0.001)
        redis = create_redis(settings)
        hot = create_autopipeline(settings)  # the decisions' and the pixel's connection
        config = ConfigStore(redis)
        catalog = LiveCatalog(
            config.load, config.version, config.write, on_reload=metrics.catalog_loaded
        )
        await hot.connect()
        try:
            await catalog.reload()
        except (RedisError, OSError) as exc:
            log.warning("redis unreachable at startup (%s); catalog loads when it answers", exc)
        window = settings.dedup_window_days * DAY
        users = UserStore(
            redis,
            max_fields=settings.max_memberships_per_user,
            dedup_window_seconds=window,
            keep_seconds=window,
            pipeline=hot,
        )
        counters = Counters(
            command_batches(redis, hot), clock.now, watched=lambda: catalog.current.budgeted
        )
        breaker = _breaker(settings, metrics)
        spool = Spool(settings.spool_dir, settings.spool_max_bytes)
        recorder = Recorder(users, spool, breaker, metrics, settings.pixel_deadline_ms / 1000)
        stop = asyncio.Event()
        background = [
            asyncio.create_task(catalog.keep_fresh(settings.catalog_refresh_seconds, stop)),
            asyncio.create_task(counters.keep_flushing(settings.counters_flush_seconds, stop)),
            asyncio.create_task(recorder.keep_replaying(settings.spool_replay_seconds, stop)),
            asyncio.create_task(metrics.keep_syncing(stop)),
        ]
        try:
            yield State(
                settings=settings,
                clock=clock,
                redis=redis,
                catalog=catalog,
                users=users,
                breaker=breaker,
                spool=spool,
                recorder=recorder,
                counters=counters,
                metrics=metrics,
                decider=Decider(
                    DecisionStore(
                        hot,
                        flush_scripts=lambda: _flush_scripts(redis),
                        max_script_bytes=settings.decision_scripts_max_bytes,
                    ),
                    counters,
                    settings,
                    clock,
                    metrics,
                    breaker,
                ),
                tracking=TrackingStore(
                    redis,
                    remember_seconds=settings.tracking_ttl_seconds,
                    # The last click and view must outlive the longest attribution window.
                    attribution_seconds=max(window, MAX_WINDOW_DAYS * DAY),
                ),
                reports=ReportStore(redis),
            )
        finally:
            gc.unfreeze()  # what the catalog reloads froze may be collected again
            stop.set()
            _, late = await asyncio.wait(background, timeout=2 * settings.redis_socket_timeout + 1)
            for task in late:
                task.cancel()
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1):
                    await counters.flush()  # the last counts of a clean shutdown
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1):
                    await recorder.replay()  # what is left stays on disk for the next start
            spool.close()
            await hot.aclose()
            await redis.aclose()

    app = RetargetApp(
        title="retarget",
        version="0.1.0",
        summary="Retargeting ad server: purchase pixel, audiences, frequency-capped decisions.",
        lifespan=lifespan,
    )
    errors.install(app)
    for module in (
        health,
        decisions,
        delivery,
        pixel,
        tracking,
        events,
        advertisers,
        audiences,
        campaigns,
        publishers,
        privacy,
        reports,
        demo,
        dashboard,
    ):
        app.include_router(module.router)
    # The demo's and the dashboard's assets (charting library included): our own origin only.
    app.mount("/static", StaticFiles(packages=[("retarget", "static")]), name="static")
    app.metrics = metrics
    app.limits = Limits(settings, clock.now, metrics)
    app.body_limits = (settings.max_body_bytes, {"/v1/events": settings.max_events_body_bytes})
    app.hot_paths = HotPaths(metrics, settings.max_body_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _flush_scripts(redis: RedisClient) -> None:
    """SCRIPT FLUSH ASYNC on every master, in the background (see DecisionStore)."""

    async def flush() -> None:
        try:
            await redis.script_flush("ASYNC")
            log.info("flushed redis's script cache: the decision plans' scripts passed the bound")
        except (RedisError, OSError) as exc:
            log.warning("script flush failed (%s); next time the bound is passed", exc)

    task = asyncio.get_running_loop().create_task(flush())
    _background_flushes.add(task)
    task.add_done_callback(_background_flushes.discard)


_background_flushes: set[asyncio.Task[None]] = set()


def _breaker(settings: Settings, metrics: Metrics) -> Breaker:
    """This worker's breaker in front of Redis; every move is logged and counted."""

    def moved(state: BreakerState) -> None:
        log.warning("redis circuit breaker %s", state.value)
        metrics.breaker(state.value)

    return Breaker(
        failure_threshold=settings.breaker_failure_threshold,
        cooldown_seconds=settings.breaker_cooldown_seconds,
        now=time.monotonic,
        on_change=moved,
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the schemas of bodies that routes parse themselves and every
    error answer (see openapi)."""
    if app.openapi_schema is None:
        schema = declare_errors(
            get_openapi(title=app.title, version=app.version, routes=app.routes)
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        bodies = (("EventBatch", TypeAdapter(EventBatch)), ("DecisionRequest", DECISION_REQUEST))
        for name, body in bodies:
            extra = body.json_schema(ref_template="#/components/schemas/{model}")
            components.update(extra.pop("$defs", {}))
            components[name] = extra
        app.openapi_schema = schema
    return app.openapi_schema


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: the CLI has put every setting in the environment."""
    settings, _ = with_secrets(load_settings())
    return create_app(settings)
