"""Impression and click tracking: counted once per token, in one round trip."""

from __future__ import annotations

import orjson

from retarget.attribution import Touch, TouchKind
from retarget.store import keys
from retarget.store.client import RedisClient
from retarget.store.scripts import load_script
from retarget.tracking import Claims
from retarget.users import Namespace, UserRef


class TrackingStore:
    def __init__(
        self, redis: RedisClient, *, remember_seconds: int, attribution_seconds: int
    ) -> None:
        self._track = load_script(redis, "track")
        self._remember = remember_seconds
        self._attribution = attribution_seconds

    async def track(self, kind: str, claims: Claims, now: float) -> bool:
        """True the first time this token is seen for ``kind`` (imp or click)."""
        user = UserRef(Namespace(claims.namespace), claims.user_id)
        touch = encode_touch(claims, now)
        field = keys.last_touch_field("click" if kind == "click" else "view", claims.advertiser_id)
        return bool(
            await self._track(
                keys=[keys.user_tracked(user), keys.user_profile(user)],
                args=[
                    int(now),
                    f"{kind}:{claims.decision_id}:{claims.placement_id}",
                    self._remember,
                    field,
                    touch,
                    self._attribution,
                ],
            )
        )


def encode_touch(claims: Claims, now: float) -> bytes:
    """``{"ts":..}`` first: the scripts read it with a pattern (profile trimming)."""
    return orjson.dumps(
        {
            "ts": int(now),
            "campaign": claims.campaign_id,
            "creative": claims.creative_id,
            "publisher": claims.publisher_id,
            "category": claims.site_category,
        }
    )


def decode_touch(kind: TouchKind, raw: bytes | str) -> Touch | None:
    """A stored last click or view; None when absent or unreadable."""
    if not raw:
        return None
    try:
        stored = orjson.loads(raw)
        return Touch(
            kind=kind,
            ts=int(stored["ts"]),
            campaign_id=str(stored["campaign"]),
            creative_id=str(stored["creative"]),
            publisher_id=str(stored["publisher"]),
            site_category=str(stored["category"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
