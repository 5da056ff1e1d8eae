"""The decision's one round trip: store/decide.lua over the user's hash-tagged keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retarget.decisions import Plan
from retarget.store import keys
from retarget.store.client import RedisClient
from retarget.store.scripts import load_script
from retarget.store.users import decode_purchase
from retarget.users import UserRef


@dataclass(frozen=True, slots=True)
class Win:
    campaign_id: str
    prior_impressions: int
    last_purchase: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ScriptOutcome:
    wins: list[Win | None]  # per slot
    rejections: list[tuple[str, str]]  # (campaign id, reason), with explain only


class DecisionStore:
    def __init__(self, redis: RedisClient) -> None:
        self._decide = load_script(redis, "decide")

    async def decide(
        self,
        user: UserRef,
        plan: Plan,
        blocked: list[int],
        slots: int,
        now: float,
        explain: bool,
    ) -> ScriptOutcome:
        """Check the user's rules for the candidates, best first, and record the winners."""
        argv = [
            int(now),
            slots,
            "1" if explain else "0",
            ",".join(map(str, blocked)),
            plan.audiences,
            plan.specs,
        ]
        raw_wins, raw_reasons = await self._decide(
            keys=[keys.user_profile(user), keys.user_frequency(user)], args=argv
        )
        wins: list[Win | None] = []
        for raw in raw_wins:
            if not raw:
                wins.append(None)
                continue
            campaign, prior, purchase = raw
            wins.append(
                Win(campaign.decode(), int(prior), decode_purchase(purchase) if purchase else None)
            )
        reasons = [
            (raw_reasons[i].decode(), raw_reasons[i + 1].decode())
            for i in range(0, len(raw_reasons), 2)
        ]
        return ScriptOutcome(wins, reasons)
