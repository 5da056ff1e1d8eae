"""The hot paths' shared Redis connection, against a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.store.autopipeline import AutoPipeline, LuaScript

ECHO = LuaScript("return {KEYS[1], ARGV[1]}")
COUNT = LuaScript("return redis.call('INCR', KEYS[1])")


def pipeline_for(url: str, socket_timeout: float = 1.0) -> AutoPipeline:
    return AutoPipeline(
        url, connect_timeout=1.0, socket_timeout=socket_timeout, client_name="test-hot"
    )


@pytest.fixture
async def pipeline(redis: Redis, redis_server: EmbeddedRedis) -> AsyncIterator[AutoPipeline]:
    hot = pipeline_for(redis_server.url)
    await hot.connect()
    yield hot
    await hot.aclose()


async def test_concurrent_calls_each_get_their_own_reply(pipeline: AutoPipeline) -> None:
    replies = await asyncio.gather(
        *(pipeline.evalsha(ECHO, [f"{{u:{i}}}:p"], [i]) for i in range(200))
    )

    assert replies == [[f"{{u:{i}}}:p".encode(), str(i).encode()] for i in range(200)]


async def test_calls_of_one_event_loop_tick_reach_redis_as_one_evalsha_each(
    pipeline: AutoPipeline, redis: Redis
) -> None:
    await pipeline.evalsha(COUNT, ["warm-up"], [])  # the script is loaded from here on
    before = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"]

    await asyncio.gather(*(pipeline.evalsha(COUNT, ["counted"], []) for _ in range(50)))

    after = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"]
    assert after - before == 50
    assert await redis.get("counted") == b"50"


async def test_a_call_reaches_redis_before_its_caller_yields_to_the_event_loop(
    pipeline: AutoPipeline, redis_server: EmbeddedRedis
) -> None:
    # Redis can run the first request's script while the app parses the next ones: the call
    # is written at once, not at the end of the event-loop pass.
    await pipeline.evalsha(COUNT, ["warm-up"], [])
    watcher = SyncRedis.from_url(redis_server.url)

    reply = pipeline.evalsha(COUNT, ["written-at-once"], [])
    deadline = time.monotonic() + 2
    while watcher.get("written-at-once") is None and time.monotonic() < deadline:
        time.sleep(0.001)  # noqa: ASYNC251 - blocking on purpose: no later loop pass runs

    assert watcher.get("written-at-once") == b"1"
    assert await reply == 1
    watcher.close()


async def test_a_call_nobody_waits_for_keeps_the_next_reply_in_step(
    pipeline: AutoPipeline,
) -> None:
    abandoned = pipeline.evalsha(ECHO, ["first"], ["a"])
    answered = await pipeline.evalsha(ECHO, ["second"], ["b"])

    assert answered == [b"second", b"b"]
    assert await abandoned == [b"first", b"a"]


async def test_a_call_given_up_on_still_tells_its_landed_hook_how_it_ended(
    pipeline: AutoPipeline, redis: Redis
) -> None:
    heard: list[BaseException | None] = []
    given_up = pipeline.evalsha(COUNT, ["late"], [], heard.append)
    given_up.set_result("deadline")  # what a deadline does to a call it stops waiting for
    failing = pipeline.evalsha(
        LuaScript("return redis.error_reply('no such thing')"), [], [], heard.append
    )

    assert await pipeline.evalsha(ECHO, ["next"], ["n"]) == [b"next", b"n"]  # in step
    assert given_up.result() == "deadline"
    assert await redis.get("late") == b"1"  # the call itself went on
    assert heard[0] is None
    assert isinstance(heard[1], ResponseError)
    with pytest.raises(ResponseError):
        await failing


async def test_a_landed_hook_that_raises_holds_up_no_reply_behind_it(
    pipeline: AutoPipeline,
) -> None:
    def broken(_: BaseException | None) -> None:
        raise RuntimeError("a bug in a hook")

    first = pipeline.evalsha(ECHO, ["first"], ["a"], broken)
    second = pipeline.evalsha(ECHO, ["second"], ["b"])

    assert await first == [b"first", b"a"]
    assert await second == [b"second", b"b"]


async def test_a_script_redis_forgot_is_sent_again_with_its_source(
    pipeline: AutoPipeline, redis: Redis
) -> None:
    assert await pipeline.evalsha(COUNT, ["once"], []) == 1
    await redis.script_flush()  # what a Redis restart does to the script cache

    assert await pipeline.evalsha(COUNT, ["once"], []) == 2  # ran exactly once more


async def test_a_script_error_fails_only_its_own_call(pipeline: AutoPipeline) -> None:
    failing = pipeline.evalsha(LuaScript("return redis.error_reply('no such thing')"), [], [])
    fine = pipeline.evalsha(ECHO, ["k"], ["v"])

    with pytest.raises(ResponseError, match="no such thing"):
        await failing
    assert await fine == [b"k", b"v"]


async def test_a_redis_that_stops_answering_fails_the_calls_within_the_socket_timeout(
    redis: Redis, redis_server: EmbeddedRedis
) -> None:
    hot = pipeline_for(redis_server.url, socket_timeout=0.2)
    await hot.connect()
    try:
        await redis.execute_command("CLIENT", "PAUSE", 1000, "ALL")
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await hot.evalsha(ECHO, ["k"], ["v"])
        assert time.perf_counter() - started < 0.6
        await redis.execute_command("CLIENT", "UNPAUSE")

        assert await hot.evalsha(ECHO, ["k"], ["v"]) == [b"k", b"v"]  # reconnected
    finally:
        await redis.execute_command("CLIENT", "UNPAUSE")
        await hot.aclose()


async def test_without_a_server_calls_fail_fast_with_a_connection_error() -> None:
    hot = pipeline_for(f"redis://127.0.0.1:{free_port()}/0")
    heard: list[BaseException | None] = []
    started = time.perf_counter()

    with pytest.raises(ConnectionError):
        await hot.evalsha(ECHO, ["k"], ["v"], heard.append)

    assert time.perf_counter() - started < 0.5
    assert len(heard) == 1
    assert isinstance(heard[0], ConnectionError)
    await hot.aclose()


async def test_the_database_named_in_the_url_is_the_one_written(
    redis: Redis, redis_server: EmbeddedRedis
) -> None:
    hot = pipeline_for(redis_server.url.rsplit("/", 1)[0] + "/3")
    try:
        await hot.evalsha(COUNT, ["in-db-3"], [])
    finally:
        await hot.aclose()

    other = Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/3")
    assert await other.get("in-db-3") == b"1"
    assert await redis.get("in-db-3") is None
    await other.flushdb()
    await other.aclose()


async def test_after_close_calls_fail_instead_of_reconnecting(pipeline: AutoPipeline) -> None:
    await pipeline.aclose()

    with pytest.raises(ConnectionError):
        await pipeline.evalsha(ECHO, ["k"], ["v"])
    with pytest.raises(ConnectionError):
        await pipeline.execute_many([("PING",)])


async def test_a_batch_of_commands_gets_its_replies_in_order(
    pipeline: AutoPipeline, redis: Redis
) -> None:
    replies = await pipeline.execute_many(
        [("HINCRBY", "spend", "a", 2), ("HINCRBY", "spend", "b", 3), ("HGETALL", "spend")]
    )

    assert replies == [2, 3, [b"a", b"2", b"b", b"3"]]


async def test_an_error_in_a_batch_is_raised_after_the_rest_have_run(
    pipeline: AutoPipeline, redis: Redis
) -> None:
    await redis.set("text", "not a hash")

    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await pipeline.execute_many([("HINCRBY", "text", "a", 1), ("INCR", "after")])

    assert await redis.get("after") == b"1"
    assert await pipeline.execute("PING") == b"PONG"  # the connection is still in step
