"""The hot paths' Redis connection: one per worker, shared by every request, pipelined.

redis-py's asyncio client takes a pooled connection per command, writes it, awaits its
reply in a task of its own and hands the connection back: measured under wrk, that path
cost more of a decision's CPU than the script's own work in Redis. Here one connection per
worker is shared: a call packs its command (hiredis, in C), writes it at once and waits on
a future; replies arrive in order on an ``asyncio.Protocol`` and resolve the futures first
in, first out. Redis runs each EVALSHA on its own, exactly as if it came alone: "one round
trip per request" holds from each request's point of view (one command sent, one reply
awaited), and ``INFO commandstats`` counts one EVALSHA per request.

A call is written at once, not gathered with the other calls of its event-loop pass into
one write: gathered, Redis got a burst's commands only after the app had parsed the whole
burst, and answered them all together after running every script, so the burst's first
request waited for its last one's script. Written at once, Redis works on the first
command while the app parses the next requests. Measured at half the floor's maximum
(6 alternating wrk rounds, one worker): p50 0.77 against 0.95 ms (the floor's: 0.71), for
about 2.5 µs more CPU per decision (a write each). A background flush's many commands
(``execute_many``) still leave in one write.

Failure rules, the same as the redis-py client's settings (store/client.py):

- no reply within ``socket_timeout`` (counted from the oldest unanswered command): the
  connection is dropped and every waiting call fails with ``TimeoutError``;
- the server goes away: every waiting call fails with ``ConnectionError``; the next call
  reconnects (``connect_timeout``); no call is retried, because a script that recorded an
  impression must not run twice;
- ``NOSCRIPT`` (Redis restarted and forgot the script, which therefore did nothing): the
  call is sent again once as ``EVAL`` with the source, which also reloads it.

Abandoning a call (a decision's deadline) is safe: its reply is read and dropped, the
connection stays in step. A call's future may be resolved by someone else first (a deadline
does that, see ``deadlines``): its reply is then dropped, and how the call really ended is
told to its ``landed`` hook, called once, as soon as Redis answers or the call fails.

Only single-node Redis (or one node of a cluster, for keys of one slot) is supported here;
see ``store/client.py`` for where a cluster client plugs in.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoScriptError,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("retarget")


@dataclass(frozen=True)
class LuaScript:
    """A script's source and SHA1, for EVALSHA (and EVAL once after a Redis restart)."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "sha", hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()
        )


Landed: TypeAlias = Callable[[BaseException | None], None]
"""How a call ended: None when Redis answered it, else the error (an error reply too)."""


class _Call:
    __slots__ = ("args", "future", "keys", "landed", "script")

    def __init__(
        self,
        future: asyncio.Future[Any],
        script: LuaScript | None,
        keys: Sequence[Any],
        args: Sequence[Any],
        landed: Landed | None = None,
    ) -> None:
        self.future = future
        self.script = script
        self.keys = keys
        self.args = args
        self.landed = landed

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)
        self._tell(error)

    def answer(self, reply: Any) -> None:
        if not self.future.done():
            self.future.set_result(reply)
        self._tell(None)

    def _tell(self, error: BaseException | None) -> None:
        if self.landed is not None:
            try:
                self.landed(error)
            except Exception:  # a hook's bug must not stop the replies behind this one
                log.exception("a redis call's landed hook failed")


def call_in_task(awaitable: Awaitable[Any], landed: Landed | None = None) -> asyncio.Future[Any]:
    """``awaitable`` run as a task, behind a plain future with the same contract as an
    ``AutoPipeline`` call: a deadline may resolve the future first; ``landed`` hears the
    end. (A task's own result cannot be set from outside.)"""
    future = asyncio.get_running_loop().create_future()
    call = _Call(future, None, (), (), landed)

    def settle(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            call.fail(asyncio.CancelledError())
        elif (error := task.exception()) is not None:
            call.fail(error)
        else:
            call.answer(task.result())

    asyncio.ensure_future(awaitable).add_done_callback(settle)
    return future


class _Protocol(asyncio.Protocol):
    def __init__(self, pipeline: AutoPipeline) -> None:
        self._pipeline = pipeline
        self._reader = hiredis.Reader(replyError=ResponseError)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not False:
                self._pipeline._answer(reply)
            self._pipeline._heard()
        except hiredis.ProtocolError as exc:
            self._pipeline._drop(ConnectionError(f"redis protocol error: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._pipeline._drop(ConnectionError("connection to redis lost"), self)


class AutoPipeline:
    """EVALSHA calls multiplexed on one connection; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float,
        socket_timeout: float,
        client_name: str,
    ) -> None:
        self._params = parse_url(url)
        self._connect_timeout = connect_timeout
        self._socket_timeout = socket_timeout
        self._client_name = client_name
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._outbox: list[bytes] = []  # not yet written: while connecting, or execute_many's
        self._waiting: deque[_Call] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._awaited_since = 0.0  # when the oldest unanswered command was written, or
        # the last reply arrived after it, whichever is later (loop time)
        self._suspect = -1.0
        self._closed = False

    def evalsha(
        self,
        script: LuaScript,
        keys: Sequence[Any],
        args: Sequence[Any],
        landed: Landed | None = None,
    ) -> asyncio.Future[Any]:
        """A future of the script's reply; it fails with a redis-py ``RedisError``."""
        loop = asyncio.get_running_loop()
        call = _Call(loop.create_future(), script, keys, args, landed)
        if self._closed:
            call.fail(ConnectionError("the redis pipeline is closed"))
            return call.future
        command = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
        self._queue(loop, command, call)
        return call.future

    async def connect(self) -> None:
        """Connect now rather than on the first call (which would wait for it); a failure
        is not raised but left for the calls to report (they reconnect)."""
        if self._transport is None and not self._closed:
            if self._connecting is None:
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            await asyncio.shield(self._connecting)

    async def execute(self, *command: Any) -> Any:
        """One plain command (tests, health checks): its reply, or a ``RedisError``."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue(loop, hiredis.pack_command(command), _Call(future, None, (), ()))
        return await future

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Several plain commands in one write (a background flush): their replies in order,
        or the first error once every reply is in."""
        if self._closed:
            raise ConnectionError("the redis pipeline is closed")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        for command, future in zip(commands, futures, strict=True):
            call = _Call(future, None, (), ())
            self._queue(loop, hiredis.pack_command(tuple(command)), call, write=False)
        self._flush(loop)
        if futures:  # replies come in order: the last one answered means all are
            await asyncio.wait(futures[-1:])
        for error in [future.exception() for future in futures]:  # every one retrieved
            if error is not None:
                raise error
        return [future.result() for future in futures]

    async def aclose(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        self._drop(ConnectionError("the redis pipeline is closed"))

    # ---- sending -------------------------------------------------------------------------

    def _queue(
        self, loop: asyncio.AbstractEventLoop, command: bytes, call: _Call, write: bool = True
    ) -> None:
        self._outbox.append(command)
        self._waiting.append(call)
        if self._transport is None:
            if self._connecting is None:
                self._connecting = loop.create_task(self._connect())
        elif write:
            self._flush(loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._transport is None or not self._outbox:
            return
        if len(self._waiting) == len(self._outbox):  # nothing sent was unanswered
            self._awaited_since = loop.time()
        self._transport.write(b"".join(self._outbox))
        self._outbox.clear()
        if self._watchdog is None:
            self._watchdog = loop.call_at(self._awaited_since + self._socket_timeout, self._watch)

    # ---- receiving -----------------------------------------------------------------------

    def _answer(self, reply: Any) -> None:
        call = self._waiting.popleft()
        if isinstance(reply, ResponseError):
            if call.script is not None and str(reply).startswith("NOSCRIPT"):
                # The script did nothing: send it once more, with its source.
                script, call.script = call.script, None
                command = ("EVAL", script.source, len(call.keys), *call.keys, *call.args)
                self._queue(asyncio.get_running_loop(), hiredis.pack_command(command), call)
                return
            if str(reply).startswith("NOSCRIPT"):
                reply = NoScriptError(str(reply))
            call.fail(reply)
            return
        call.answer(reply)

    def _heard(self) -> None:
        self._awaited_since = asyncio.get_running_loop().time()

    def _watch(self) -> None:
        """One timer per connection: Redis must send something within the socket timeout
        of when a reply was first awaited or of the last reply, else the connection is
        dead (what redis-py's socket timeout means for one connection)."""
        self._watchdog = None
        if len(self._waiting) == len(self._outbox) or self._transport is None:
            return  # nothing sent is unanswered
        loop = asyncio.get_running_loop()
        since = self._awaited_since
        if since + self._socket_timeout > loop.time():
            self._watchdog = loop.call_at(since + self._socket_timeout, self._watch)
        elif self._suspect != since:
            # A busy event loop may not have read a reply that is already here (uvloop
            # runs timers before polling): look again after one more poll.
            self._suspect = since
            self._watchdog = loop.call_later(0.001, self._watch)
        else:
            self._drop(RedisTimeoutError("redis did not answer within the socket timeout"))

    def _drop(self, error: Exception, protocol: _Protocol | None = None) -> None:
        """Close the connection and fail every call waiting on it."""
        if protocol is not None and protocol is not self._protocol:
            return  # an old connection's last words
        transport, self._transport, self._protocol = self._transport, None, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if transport is not None:
            transport.abort()
        waiting, self._waiting = self._waiting, deque()
        self._outbox.clear()
        for call in waiting:
            call.fail(error)

    # ---- connecting ----------------------------------------------------------------------

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        params = self._params
        protocol = _Protocol(self)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if "path" in params:
                    transport, _ = await loop.create_unix_connection(
                        lambda: protocol, params["path"]
                    )
                else:
                    secure = params.get("connection_class") is SSLConnection
                    tls = ssl.create_default_context() if secure else None
                    transport, _ = await loop.create_connection(
                        lambda: protocol, params.get("host", "localhost"),
                        params.get("port", 6379), ssl=tls,
                    )  # fmt: skip
                self._transport, self._protocol = transport, protocol  # type: ignore[assignment]
                await self._handshake(loop)
        except (OSError, ConnectionError, ResponseError) as exc:  # OSError: TimeoutError too
            self._connecting = None
            error = (
                exc
                if isinstance(exc, ConnectionError)
                else ConnectionError(f"cannot connect to redis: {exc!r}")
            )
            self._drop(error)  # also closes a transport that was opened
            return
        self._connecting = None
        self._flush(loop)

    async def _handshake(self, loop: asyncio.AbstractEventLoop) -> None:
        """AUTH, SELECT, CLIENT SETNAME ahead of the calls queued while connecting."""
        params = self._params
        setup: list[tuple[Any, ...]] = []
        if params.get("password"):
            user = params.get("username")
            setup.append(
                ("AUTH", user, params["password"]) if user else ("AUTH", params["password"])
            )
        if params.get("db"):
            setup.append(("SELECT", params["db"]))
        setup.append(("CLIENT", "SETNAME", self._client_name))
        futures = []
        for index, command in enumerate(setup):
            future = loop.create_future()
            futures.append(future)
            self._outbox.insert(index, hiredis.pack_command(command))
            self._waiting.insert(index, _Call(future, None, (), ()))
        self._flush(loop)
        for command, future in zip(setup, futures, strict=True):
            try:
                await future
            except ResponseError as exc:
                if command[0] == "AUTH":
                    raise AuthenticationError(str(exc)) from None
                raise
