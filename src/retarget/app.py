"""The app factory: ``create_app(settings)`` builds the app; its lifespan owns the clients."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypedDict

from fastapi import FastAPI
from redis.asyncio import Redis

from retarget.body_limit import BodyLimit
from retarget.clock import Clock, SystemClock
from retarget.routes import errors, health
from retarget.settings import Settings, load_settings, with_secrets
from retarget.store.client import create_redis

log = logging.getLogger("retarget")


class State(TypedDict):
    """What every request sees as ``request.state``."""

    settings: Settings
    clock: Clock
    redis: Redis


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """Build the service for ``settings`` (which must name a Redis URL and both secrets)."""
    clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        redis = create_redis(settings)
        try:
            yield State(settings=settings, clock=clock, redis=redis)
        finally:
            await redis.aclose()

    app = FastAPI(
        title="retarget",
        version="0.1.0",
        summary="Retargeting ad server: purchase pixel, audiences, frequency-capped decisions.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(health.router)
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        per_path={"/v1/events": settings.max_events_body_bytes},
    )
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn worker processes: the CLI has put every setting in the environment."""
    settings, _ = with_secrets(load_settings())
    return create_app(settings)
