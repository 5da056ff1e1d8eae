"""Recording that survives Redis outages: Redis when it answers, the spool when it does not.

The pixel and ``POST /v1/events`` call ``record``/``record_many``: one Redis round trip while
the breaker lets calls through; when Redis is unreachable or times out (or the breaker is
open) the recordings are fsync'd to this worker's spool instead and still acknowledged. A
background loop replays the spool once Redis answers again; the record script deduplicates
by event id, so a replay can run twice (or after a call that timed out but did land) and
still count each event once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import secrets
import time
from collections.abc import Sequence

from redis.exceptions import RedisError

from retarget.breaker import Breaker
from retarget.clock import wait_or_stop
from retarget.deadlines import Deadlines
from retarget.errors import Unavailable
from retarget.metrics import Metrics
from retarget.spool import Spool, Spooled, SpoolFull
from retarget.store.outage import OUTAGES
from retarget.store.users import Recorded, Recording, UserStore

log = logging.getLogger("retarget")

REPLAY_BATCH = 200


def _with_replay_id(recording: Recording) -> Recording:
    """An event without an id gets one before it is spooled, so replaying it twice counts
    once too. (Recording an id-less event twice leaves the same state anyway: memberships
    and the last purchase only move forward.)"""
    if recording.event.dedup_id:
        return recording
    event = dataclasses.replace(recording.event, dedup_id=f"spool-{secrets.token_hex(8)}")
    return dataclasses.replace(recording, event=event)


class Recorder:
    def __init__(
        self,
        users: UserStore,
        spool: Spool,
        breaker: Breaker,
        metrics: Metrics,
        deadline_seconds: float = 0.05,
    ) -> None:
        self._users = users
        self._spool = spool
        self._breaker = breaker
        self._metrics = metrics
        self._deadlines = Deadlines(deadline_seconds)

    async def record(self, recording: Recording, now: float) -> Recorded | None:
        """What Redis did, or None when spooled (acknowledged, recorded later).
        Unavailable when neither Redis nor the spool could take it.

        Redis gets until the deadline: past it the recording is spooled and acknowledged
        while the call goes on. Should that call land after all, the replay finds the event
        already recorded (same event id; an id-less hit leaves the same state twice), but
        the purchase's conversion, computed from the reply nobody waits for, is not counted.
        """
        if self._breaker.allow():
            landed = functools.partial(self._landed, time.perf_counter())
            reply = self._users.send(recording, now, landed)
            if await self._deadlines.reply_in_time(reply):
                try:
                    return self._users.recorded(reply.result())
                except (RedisError, OSError):
                    pass  # _landed has logged it and told the breaker: spool
            else:
                log.warning("record_event: no reply from redis within the deadline: spooling")
        await self._to_spool([recording], now)
        return None

    def _landed(self, started: float, error: BaseException | None) -> None:
        """The breaker and metrics learn how the call ended, in time or past its deadline."""
        if isinstance(error, asyncio.CancelledError):
            return
        if error is not None:
            self._failed("record_event", started, error)
        else:
            self._breaker.success()
            self._metrics.redis_call("record_event", time.perf_counter() - started)

    async def record_many(
        self, recordings: Sequence[Recording], now: float
    ) -> list[Recorded] | None:
        """Per recording what Redis did; None when the whole batch was spooled."""
        if self._breaker.allow():
            started = time.perf_counter()
            try:
                recorded = await self._users.record_many(recordings, now)
            except (RedisError, OSError) as exc:
                # Some of the pipeline may have landed: the replay's dedup sorts that out.
                self._failed("record_events", started, exc)
            else:
                self._breaker.success()
                self._metrics.redis_call("record_events", time.perf_counter() - started)
                return recorded
        await self._to_spool(recordings, now)
        return None

    def _failed(self, operation: str, started: float, exc: BaseException) -> None:
        """Any Redis error spools (an out-of-memory or read-only Redis must not lose the
        event either); only an outage counts against the breaker: an error reply means
        Redis did answer."""
        log.warning("%s not recorded in redis (%s): spooling", operation, exc)
        if isinstance(exc, OUTAGES):
            self._breaker.failure()
        else:
            self._breaker.success()
        self._metrics.redis_call(operation, time.perf_counter() - started, failed=True)

    async def _to_spool(self, recordings: Sequence[Recording], now: float) -> None:
        items = [Spooled(_with_replay_id(recording), now) for recording in recordings]
        try:
            await self._spool.append(items)
        except SpoolFull:
            self._metrics.spool("full", len(items))
            raise Unavailable("storage is unavailable and the spool is full, retry") from None
        except OSError as exc:
            log.error("spool append failed: %s", exc)
            raise Unavailable("storage is unavailable, retry") from None
        self._metrics.spool("spooled", len(items), self._spool.size)

    async def replay(self) -> bool:
        """Replay what the spool holds (this worker's and dead workers' files) while Redis
        takes it; True when nothing is left."""
        await self._spool.claim_orphans()
        # The file being appended to is handed over only once every older one is replayed:
        # during an outage a worker then holds two files at most, not one per tick.
        if not await self._replay_files():
            return False
        await self._spool.rotate()
        return await self._replay_files() and self._spool.is_empty()

    async def _replay_files(self) -> bool:
        """Replay every file handed over to replay; False when Redis stopped it."""
        for spool_file in list(self._spool.to_replay):
            while spool_file in self._spool.to_replay:
                batch = await self._spool.read(spool_file, REPLAY_BATCH)
                end = batch[-1][0] if batch else spool_file.done
                items = [item for _, item in batch if item is not None]
                if items:
                    if not self._breaker.allow():
                        return False
                    try:
                        recorded = await self._users.record_each(
                            [(item.recording, item.now) for item in items]
                        )
                    except (RedisError, OSError) as exc:
                        log.warning("spool replay stopped, redis: %s", exc)
                        if isinstance(exc, OUTAGES):
                            self._breaker.failure()
                        else:
                            self._breaker.success()
                        return False
                    self._breaker.success()
                    new = sum(result.new for result in recorded)
                    self._metrics.spool("replayed", new)
                    self._metrics.spool("duplicate", len(recorded) - new)
                await self._spool.replayed(spool_file, end)
                self._metrics.spool("replayed", 0, self._spool.size)
        return True

    async def keep_replaying(self, interval: float, stop: asyncio.Event) -> None:
        """Replay every ``interval`` seconds until ``stop`` (an asyncio.Event) is set."""
        while True:
            try:
                await self.replay()
            except Exception:
                log.exception("spool replay failed")
            if await wait_or_stop(stop, interval):
                return
