"""A user's state in Redis: audience memberships, last purchases, seen event ids."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import NoScriptError

from retarget.attribution import Touch, TouchKind
from retarget.audiences import Membership
from retarget.events import Event, EventType
from retarget.store import keys
from retarget.store.autopipeline import Landed, LuaScript, call_in_task
from retarget.store.client import HotPipeline, RedisClient
from retarget.store.scripts import load_script
from retarget.store.tracking import decode_touch
from retarget.users import UserRef


@dataclass(frozen=True, slots=True)
class Recording:
    """One event to record for one user, with the memberships it creates or renews."""

    user: UserRef
    event: Event
    memberships: Sequence[Membership]


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording did: ``new`` is False for an event id seen before (nothing written).
    A new purchase carries the user's last click and view of the advertiser's ads."""

    new: bool
    touches: tuple[Touch, ...] = ()


def _recorded(reply: Any) -> Recorded:
    if not isinstance(reply, list):
        return Recorded(bool(reply))
    _, click, view = reply
    touches = (decode_touch(TouchKind.CLICK, click), decode_touch(TouchKind.VIEW, view))
    return Recorded(True, tuple(t for t in touches if t is not None))


@dataclass(frozen=True, slots=True)
class StoredProfile:
    memberships: list[Membership]
    last_purchases: dict[str, dict[str, Any]]  # advertiser id -> purchase
    # advertiser id -> the user's last click on / view of its ads (attribution)
    last_clicks: dict[str, Touch]
    last_views: dict[str, Touch]
    seen_event_ids: list[tuple[str, int]]  # (advertiser id:event id, first seen)
    ttl_seconds: int | None


# Short field names keep a profile under Redis's compact-hash value limit (64 bytes).
_PURCHASE_FIELDS = {
    "s": "sku",
    "n": "product",
    "c": "category",
    "v": "value",
    "$": "currency",
}


def encode_purchase(event: Event) -> bytes:
    """``{"ts":..}`` first: the scripts read it with a pattern (latest wins, trimming)."""
    stored: dict[str, object] = {"ts": int(event.ts)}
    for short, name in _PURCHASE_FIELDS.items():
        value = getattr(event, name)
        if value is not None:
            stored[short] = value
    return orjson.dumps(stored)


def decode_purchase(raw: bytes | str) -> dict[str, Any]:
    stored = orjson.loads(raw)
    return {"ts": stored.get("ts")} | {
        name: stored.get(short) for short, name in _PURCHASE_FIELDS.items()
    }


class UserStore:
    def __init__(
        self,
        redis: RedisClient,
        *,
        max_fields: int,
        dedup_window_seconds: int,
        keep_seconds: int,
        pipeline: HotPipeline | None = None,
    ) -> None:
        self._redis = redis
        self._pipeline = pipeline  # the pixel's path; without it, redis-py's
        self._record = load_script(redis, "record_event")
        self._record_lua = LuaScript(self._record.script)
        self._max_fields = max_fields
        self._dedup_window = dedup_window_seconds
        self._keep = keep_seconds

    def _args(self, recording: Recording, now: float) -> tuple[list[str], list[Any]]:
        event, user = recording.event, recording.user
        dedup = f"{event.advertiser_id}:{event.dedup_id}" if event.dedup_id else ""
        purchase_field, purchase, click_field, view_field = "", b"", "", ""
        if event.type is EventType.PURCHASE:
            purchase_field = keys.last_purchase_field(event.advertiser_id)
            purchase = encode_purchase(event)
            click_field = keys.last_touch_field("click", event.advertiser_id)
            view_field = keys.last_touch_field("view", event.advertiser_id)
        argv: list[Any] = [
            int(now),
            dedup,
            self._dedup_window,
            self._max_fields,
            purchase_field,
            purchase,
            self._keep,
            click_field,
            view_field,
        ]
        for m in recording.memberships:
            argv += [keys.membership_field(m.audience_id), m.since, m.expires]
        return [keys.user_profile(user), keys.user_seen_events(user)], argv

    async def record(self, recording: Recording, now: float) -> Recorded:
        """Record in one round trip (one EVALSHA)."""
        return self.recorded(await self.send(recording, now))

    def send(
        self, recording: Recording, now: float, landed: Landed | None = None
    ) -> asyncio.Future[Any]:
        """Send the recording's one EVALSHA; its pending reply, for ``recorded``. The caller
        may stop waiting for it at a deadline without disturbing the connection; ``landed``
        hears how the call really ended."""
        script_keys, argv = self._args(recording, now)
        if self._pipeline is None:
            return call_in_task(self._record(keys=script_keys, args=argv), landed)
        return self._pipeline.evalsha(self._record_lua, script_keys, argv, landed)

    @staticmethod
    def recorded(reply: Any) -> Recorded:
        """What the record script's reply says it did."""
        return _recorded(reply)

    async def record_many(self, recordings: Sequence[Recording], now: float) -> list[Recorded]:
        """Record a batch in one round trip (a pipeline of EVALSHAs, not a transaction)."""
        return await self.record_each([(recording, now) for recording in recordings])

    async def record_each(self, batch: Sequence[tuple[Recording, float]]) -> list[Recorded]:
        """Like ``record_many``, each recording at its own time (the spool's replay)."""
        calls = [self._args(recording, now) for recording, now in batch]
        results = await self._run_all("EVALSHA", self._record.sha, calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:  # Redis restarted and forgot the script: those calls did nothing yet.
            # EVAL (which caches the script) on the nodes that said NOSCRIPT, not SCRIPT LOAD,
            # which a cluster client sends to every master, dead ones included.
            again = await self._run_all("EVAL", self._record.script, [calls[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return [_recorded(r) for r in results]

    async def _run_all(
        self, command: str, script: str, calls: list[tuple[list[str], list[Any]]]
    ) -> list[Any]:
        # Not redis-py's Script-in-pipeline: that sends SCRIPT EXISTS first, a second trip.
        # The raw command, because a cluster pipeline blocks its ``evalsha`` method; it still
        # routes each call by its first key (every key of a call shares the user's slot).
        async with self._redis.pipeline(transaction=False) as pipe:
            for script_keys, argv in calls:
                pipe.execute_command(command, script, len(script_keys), *script_keys, *argv)
            return list(await pipe.execute(raise_on_error=False))

    async def load(self, user: UserRef) -> StoredProfile:
        """Everything stored about a user, for export (one round trip)."""
        profile_key, seen_key = keys.user_profile(user), keys.user_seen_events(user)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(profile_key)
            pipe.zrange(seen_key, 0, -1, withscores=True)
            pipe.ttl(profile_key)
            fields, seen, ttl = await pipe.execute()
        memberships, purchases = [], {}
        clicks: dict[str, Touch] = {}
        views: dict[str, Touch] = {}
        for raw_name, raw_value in fields.items():
            name, value = raw_name.decode(), raw_value.decode()
            kind, _, ident = name.partition(":")
            if kind == "m":
                since, _, expires = value.partition(":")
                memberships.append(Membership(ident, int(since), int(expires)))
            elif kind == "p":
                purchases[ident] = decode_purchase(value)
            elif kind in ("c", "v") and (
                touch := decode_touch(TouchKind.CLICK if kind == "c" else TouchKind.VIEW, value)
            ):
                (clicks if kind == "c" else views)[ident] = touch
        return StoredProfile(
            memberships=sorted(memberships, key=lambda m: m.audience_id),
            last_purchases=purchases,
            last_clicks=clicks,
            last_views=views,
            seen_event_ids=[(member.decode(), int(score)) for member, score in seen],
            ttl_seconds=ttl if ttl >= 0 else None,
        )

    async def erase(self, user: UserRef) -> bool:
        """Delete every key of the user; True when there was something to delete."""
        return bool(await self._redis.delete(*keys.user_keys(user)))
