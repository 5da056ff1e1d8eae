"""Waiting for a reply until a deadline: the reply's own future, resolved by whichever
comes first."""

from __future__ import annotations

import asyncio

from retarget.deadlines import EXPIRED, Deadlines


async def test_a_reply_in_time_is_waited_for() -> None:
    loop = asyncio.get_running_loop()
    reply = loop.create_future()
    loop.call_later(0.01, reply.set_result, "answer")

    assert await Deadlines(1.0).reply_in_time(reply) is True
    assert reply.result() == "answer"


async def test_an_error_in_time_is_an_answer_for_the_caller_to_read() -> None:
    loop = asyncio.get_running_loop()
    reply = loop.create_future()
    loop.call_later(0.01, reply.set_exception, ConnectionError("gone"))

    assert await Deadlines(1.0).reply_in_time(reply) is True
    assert isinstance(reply.exception(), ConnectionError)


async def test_a_reply_past_the_deadline_expires_and_its_late_answer_is_not_taken() -> None:
    loop = asyncio.get_running_loop()
    reply = loop.create_future()
    started = loop.time()

    assert await Deadlines(0.05).reply_in_time(reply) is False
    assert 0.05 <= loop.time() - started < 0.2
    assert reply.result() is EXPIRED


async def test_time_already_spent_counts_against_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    assert await Deadlines(0.5).reply_in_time(loop.create_future(), spent=0.45) is False
    assert loop.time() - started < 0.2


async def test_one_timer_expires_many_waiters_in_turn() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(0.05)
    replies = [loop.create_future() for _ in range(3)]
    loop.call_later(0.01, replies[1].set_result, "answer")

    in_time = await asyncio.gather(*(deadlines.reply_in_time(r) for r in replies))

    assert in_time == [False, True, False]
    assert [r.result() for r in replies] == [EXPIRED, "answer", EXPIRED]
