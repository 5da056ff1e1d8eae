"""Budgets and pacing: may a campaign serve one more impression now? (pure)"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from retarget.campaigns import Budget, Pacing

DAY = 86_400


@dataclass(frozen=True, slots=True)
class Spend:
    """Impressions served so far: in total and today (UTC)."""

    total: int = 0
    today: int = 0


def budget_allows(budget: Budget, spend: Spend) -> bool:
    if budget.total_impressions is not None and spend.total >= budget.total_impressions:
        return False
    return budget.daily_impressions is None or spend.today < budget.daily_impressions


def pacing_allows(budget: Budget, spend: Spend, now: float) -> bool:
    """Even pacing: by time t of the UTC day, at most ``daily * t / day`` (plus one, so the
    first impression of the day is never blocked). ASAP: no limit beyond the budget."""
    if budget.pacing is Pacing.ASAP or budget.daily_impressions is None:
        return True
    elapsed = (now % DAY) / DAY
    return spend.today < budget.daily_impressions * elapsed + 1


def pacing_opens_at(budget: Budget, spend: Spend, now: float) -> float:
    """When even pacing lets a campaign held back at ``now`` serve again, its spend unchanged."""
    daily = budget.daily_impressions or 1
    return now - now % DAY + max(0.0, (spend.today - 1) / daily) * DAY


@functools.lru_cache(maxsize=4)
def _day(day_number: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(day_number * DAY))


def day_of(now: float) -> str:
    """The UTC day as ``YYYYMMDD`` (counter keys, reports)."""
    return _day(int(now // DAY))
