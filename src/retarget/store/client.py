"""The one asyncio Redis client of a worker process, with every timeout spelled out."""

from __future__ import annotations

import os

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from retarget.settings import Settings
from retarget.store.autopipeline import AutoPipeline


def create_redis(settings: Settings) -> Redis:
    """Build the client from settings.

    redis-py's defaults have changed between releases (one default retried three times
    with exponential backoff, i.e. seconds against a dead server); the hot paths must fail
    fast instead, so nothing here is left to a default. No automatic retries: a script
    that recorded an impression must not run twice because its reply was slow.
    """
    assert settings.redis_url is not None, "the CLI or the test harness sets redis_url"
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        health_check_interval=settings.redis_health_check_interval,
        max_connections=settings.redis_max_connections,
        retry=Retry(NoBackoff(), retries=0),
        retry_on_timeout=False,
        client_name=f"retarget-{os.getpid()}",
        decode_responses=False,
    )


def create_autopipeline(settings: Settings) -> AutoPipeline:
    """The hot paths' connection (decisions, the pixel): one per worker, same timeouts.

    A cluster client would route each call by its key's hash slot to one such pipeline per
    node; every hot-path call names keys of one user, hence one slot.
    """
    assert settings.redis_url is not None, "the CLI or the test harness sets redis_url"
    return AutoPipeline(
        settings.redis_url,
        connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        client_name=f"retarget-{os.getpid()}",  # as the pooled client: one name per worker
    )
