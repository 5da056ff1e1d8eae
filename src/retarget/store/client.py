"""The one asyncio Redis client of a worker process, with every timeout spelled out.

One server (``redis.asyncio.Redis``) or a Redis Cluster (``redis.asyncio.cluster.
RedisCluster``), chosen once at startup from ``RETARGET_REDIS_CLUSTER``: both speak the same
commands, so nothing downstream branches per request. Every script and transaction touches
keys of one hash tag (see ``keys``), which is what lets the same code run on a cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError, SlotNotCoveredError

from retarget.settings import Settings
from retarget.store.autopipeline import AutoPipeline, Landed, LuaScript, call_in_task

RedisClient: TypeAlias = Redis | RedisCluster


def create_redis(settings: Settings) -> RedisClient:
    """Build the client from settings.

    redis-py's defaults have changed between releases (one default retried three times
    with exponential backoff, i.e. seconds against a dead server); the hot paths must fail
    fast instead, so nothing here is left to a default. No automatic retries: a script
    that recorded an impression must not run twice because its reply was slow.
    """
    assert settings.redis_url is not None, "the CLI or the test harness sets redis_url"
    if settings.redis_cluster:
        return _create_cluster_client(settings)
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


def _create_cluster_client(settings: Settings) -> RedisCluster:
    """The cluster client: the URL names one node, the client learns the others from it.

    Same timeouts and no retries on timeouts or dropped connections (``retry`` with zero
    retries); MOVED and ASK redirections are still followed, because a redirected command
    has not run. ``max_connections`` is per node. Reads go to masters only (redis-py's
    default): a decision must see the impression it recorded a moment ago.
    """
    assert settings.redis_url is not None
    return _Cluster.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        health_check_interval=settings.redis_health_check_interval,
        max_connections=settings.redis_max_connections,
        retry=Retry(NoBackoff(), retries=0),
        client_name=f"retarget-{os.getpid()}",
        decode_responses=False,
    )


class ClusterUnavailableError(RedisConnectionError):
    """No node answers for the cluster layout, or a slot has no master: Redis is down.

    redis-py raises ``RedisClusterException``, which is not a ``RedisError``; as a
    ``ConnectionError`` it meets the handlers that turn a dead Redis into a no-fill, a lost
    count or a 503, exactly like a dead single server.
    """


class _Cluster(RedisCluster):
    """``RedisCluster`` whose "no reachable node" and "slot not covered" are RedisErrors.

    Only these two are translated: a command whose keys span slots (CROSSSLOT) stays a
    ``RedisClusterException``, a bug for the tests to find, not an outage to ride out.
    """

    async def initialize(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise ClusterUnavailableError(str(exc)) from exc

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except SlotNotCoveredError as exc:
            raise ClusterUnavailableError(str(exc)) from exc

    async def ping(self, **kwargs: Any) -> Any:
        """PING every master, not one node: readiness means every user's keys answer."""
        kwargs.setdefault("target_nodes", RedisCluster.PRIMARIES)
        return await super().ping(**kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # raises: not on a cluster
        return _ClusterPipeline(self, transaction)


class _ClusterPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        try:
            return await super().execute(raise_on_error, allow_redirections)
        except SlotNotCoveredError as exc:
            raise ClusterUnavailableError(str(exc)) from exc


def create_autopipeline(settings: Settings) -> HotPipeline:
    """The hot paths' connection (decisions, the pixel): one per worker, same timeouts.

    On a cluster, the cluster client's own per-node connections instead (``ClusterHotPath``):
    one auto-pipelined connection can only reach one node. Every hot-path call names keys
    of one user, hence one slot, hence one node.
    """
    assert settings.redis_url is not None, "the CLI or the test harness sets redis_url"
    if settings.redis_cluster:
        return ClusterHotPath(_create_cluster_client(settings))
    return AutoPipeline(
        settings.redis_url,
        connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        client_name=f"retarget-{os.getpid()}",  # as the pooled client: one name per worker
    )


class ClusterHotPath:
    """The auto-pipeline's interface over the cluster client: each call is one EVALSHA
    routed by its keys' slot (EVAL once on a node that lacks the script), as a task."""

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster

    def evalsha(
        self,
        script: LuaScript,
        keys: Sequence[Any],
        args: Sequence[Any],
        landed: Landed | None = None,
    ) -> asyncio.Future[Any]:
        return call_in_task(self._run(script, keys, args), landed)

    async def _run(self, script: LuaScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return await self._cluster.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._cluster.eval(script.source, len(keys), *keys, *args)

    async def connect(self) -> None:
        """Learn the cluster's layout now; a failure is left for the calls to report."""
        with contextlib.suppress(RedisError, OSError):
            await self._cluster.initialize()

    async def execute(self, *command: Any) -> Any:
        return await self._cluster.execute_command(*command)

    async def aclose(self) -> None:
        await self._cluster.aclose()


HotPipeline: TypeAlias = AutoPipeline | ClusterHotPath
Commands: TypeAlias = Sequence[Sequence[Any]]


def command_batches(
    redis: RedisClient, hot: HotPipeline
) -> Callable[[Commands], Awaitable[list[Any]]]:
    """How background work (the counters' flush) sends a batch of plain commands: on one
    server, down the hot paths' connection, packed by hiredis in one write (through redis-py's
    pipeline, 139 commands held the event loop for 2 ms against 0.5: loadtests/flush_bench.py);
    on a cluster, through the pooled client's pipeline, which routes by slot. The replies are
    each client's own: an HGETALL is a flat list from the first, a dict from the second."""
    if isinstance(hot, AutoPipeline):
        return hot.execute_many
    return functools.partial(pipelined, redis)


async def pipelined(redis: RedisClient, commands: Commands) -> list[Any]:
    """Plain commands through redis-py's pipeline (one per node on a cluster): their replies."""
    async with redis.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute())
