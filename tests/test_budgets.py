"""Budgets and pacing: whether a campaign may serve one more impression now."""

from __future__ import annotations

import pytest

from retarget.budgets import Spend, budget_allows, day_of, pacing_allows
from retarget.campaigns import Budget, Pacing

# 2027-01-15 00:00:00 UTC
MIDNIGHT = 1_799_971_200
HOUR = 3600


def test_a_campaign_without_a_budget_may_always_serve() -> None:
    assert budget_allows(Budget(), Spend(total=10**9, today=10**6)) is True


def test_a_total_budget_allows_serving_below_it() -> None:
    assert budget_allows(Budget(total_impressions=100), Spend(total=99, today=99)) is True


def test_a_spent_total_budget_stops_serving() -> None:
    assert budget_allows(Budget(total_impressions=100), Spend(total=100, today=0)) is False


def test_a_daily_budget_allows_serving_below_it() -> None:
    assert budget_allows(Budget(daily_impressions=50), Spend(total=500, today=49)) is True


def test_a_spent_daily_budget_stops_serving_for_the_day() -> None:
    assert budget_allows(Budget(daily_impressions=50), Spend(total=50, today=50)) is False


def test_a_total_budget_stops_serving_even_when_the_daily_one_has_room() -> None:
    budget = Budget(total_impressions=100, daily_impressions=50)

    assert budget_allows(budget, Spend(total=100, today=10)) is False


def test_without_a_daily_budget_even_pacing_never_holds_back() -> None:
    budget = Budget(total_impressions=100, pacing=Pacing.EVEN)

    assert pacing_allows(budget, Spend(total=99, today=99), MIDNIGHT) is True


@pytest.mark.parametrize("hour", [0, 6, 12, 23])
def test_asap_pacing_never_holds_back_within_the_budget(hour: int) -> None:
    budget = Budget(daily_impressions=240, pacing=Pacing.ASAP)

    assert pacing_allows(budget, Spend(today=239), MIDNIGHT + hour * HOUR) is True


def test_even_pacing_allows_the_first_impression_at_midnight() -> None:
    budget = Budget(daily_impressions=240, pacing=Pacing.EVEN)

    assert pacing_allows(budget, Spend(today=0), MIDNIGHT) is True


def test_even_pacing_holds_back_a_second_impression_at_midnight() -> None:
    budget = Budget(daily_impressions=240, pacing=Pacing.EVEN)

    assert pacing_allows(budget, Spend(today=1), MIDNIGHT) is False


@pytest.mark.parametrize(
    ("hour", "allowed"),
    [(6, 60), (12, 120), (18, 180)],
    ids=["06:00", "12:00", "18:00"],
)
def test_even_pacing_allows_the_share_of_the_day_elapsed_plus_one(hour: int, allowed: int) -> None:
    budget = Budget(daily_impressions=240, pacing=Pacing.EVEN)
    now = MIDNIGHT + hour * HOUR

    assert pacing_allows(budget, Spend(today=allowed), now) is True
    assert pacing_allows(budget, Spend(today=allowed + 1), now) is False


def test_even_pacing_allows_almost_the_whole_budget_by_the_last_second() -> None:
    budget = Budget(daily_impressions=240, pacing=Pacing.EVEN)

    assert pacing_allows(budget, Spend(today=239), MIDNIGHT + 24 * HOUR - 1) is True


def test_even_pacing_starts_over_at_the_next_utc_midnight() -> None:
    budget = Budget(daily_impressions=240, pacing=Pacing.EVEN)

    assert pacing_allows(budget, Spend(today=1), MIDNIGHT + 24 * HOUR) is False
    assert pacing_allows(budget, Spend(today=0), MIDNIGHT + 24 * HOUR) is True


def test_the_day_of_a_moment_is_its_utc_date() -> None:
    assert day_of(MIDNIGHT) == "20270115"
    assert day_of(MIDNIGHT - 1) == "20270114"
