"""The decision's one round trip: store/decide.lua over the user's hash-tagged keys."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from retarget.decisions import Plan
from retarget.store import keys
from retarget.store.client import HotPipeline
from retarget.store.scripts import lua_script
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
    def __init__(self, pipeline: HotPipeline) -> None:
        self._pipeline = pipeline
        self._decide = lua_script("decide")

    def send(
        self,
        user: UserRef,
        plan: Plan,
        blocked: list[int],
        slots: int,
        now: float,
        explain: bool,
    ) -> asyncio.Future[Any]:
        """Check the user's rules for the candidates, best first, and record the winners.

        Returns the pending reply (read it with ``outcome``): the caller may stop waiting
        for it at a deadline without disturbing the connection."""
        argv = (
            int(now),
            slots,
            "1" if explain else "0",
            ",".join(map(str, blocked)),
            plan.audiences,
            plan.specs,
        )
        return self._pipeline.evalsha(
            self._decide, (keys.user_profile(user), keys.user_frequency(user)), argv
        )

    @staticmethod
    def outcome(reply: Any) -> ScriptOutcome:
        raw_wins, raw_reasons = reply
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
