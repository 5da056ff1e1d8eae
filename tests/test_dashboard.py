"""The dashboard's session and page data, with no server (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest

from retarget import dashboard
from retarget.api_keys import Role, StoredKey, key_hash
from retarget.errors import Unauthorized
from retarget.reports import Report, ReportQuery, StatRow, build_report, report_query
from tests.conftest import T0

SECRET = "test-secret-key"
ADVERTISER_KEY = "rt_adv_example-key"
KEYS = {
    key_hash(ADVERTISER_KEY): StoredKey(role=Role.ADVERTISER, owner_id="adv_1", prefix="rt_adv_ex"),
    key_hash("rt_pub_example"): StoredKey(
        role=Role.PUBLISHER, owner_id="pub_1", prefix="rt_pub_ex"
    ),
}


def test_a_session_signs_in_the_advertiser_whose_key_was_given() -> None:
    session = dashboard.sign_in(SECRET, ADVERTISER_KEY, KEYS, T0)
    assert dashboard.session_advertiser(SECRET, session, KEYS, T0 + 60) == "adv_1"


def test_a_session_never_holds_the_key_itself() -> None:
    session = dashboard.sign_in(SECRET, ADVERTISER_KEY, KEYS, T0)
    assert ADVERTISER_KEY not in session
    assert ADVERTISER_KEY.removeprefix("rt_adv_") not in session


@pytest.mark.parametrize("key", ["rt_pub_example", "rt_adv_unknown", "", "x" * 5000])
def test_only_an_advertiser_key_signs_in(key: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        dashboard.sign_in(SECRET, key, KEYS, T0)
    assert refused.value.field == "api_key"


def test_a_session_expires() -> None:
    session = dashboard.sign_in(SECRET, ADVERTISER_KEY, KEYS, T0)
    later = T0 + dashboard.SESSION_SECONDS
    assert dashboard.session_advertiser(SECRET, session, KEYS, later) is None


def test_a_session_ends_when_its_key_is_deleted() -> None:
    session = dashboard.sign_in(SECRET, ADVERTISER_KEY, KEYS, T0)
    without_key = {h: k for h, k in KEYS.items() if k.role is not Role.ADVERTISER}
    assert dashboard.session_advertiser(SECRET, session, without_key, T0) is None


def test_a_session_cannot_be_moved_to_another_advertiser_or_extended() -> None:
    session = dashboard.sign_in(SECRET, ADVERTISER_KEY, KEYS, T0)
    advertiser, hashed, expires, mac = session.split(".")
    forged = [
        f"adv_2.{hashed}.{expires}.{mac}",
        f"{advertiser}.{hashed}.{int(expires) + 3600}.{mac}",
        f"{advertiser}.{hashed}.{expires}.{'0' * 64}",
    ]
    for value in forged:
        assert dashboard.session_advertiser(SECRET, value, KEYS, T0) is None
    assert dashboard.session_advertiser("another-secret", session, KEYS, T0) is None


@pytest.mark.parametrize("value", [None, "", "garbage", "a.b.c.d", "." * 200])
def test_a_malformed_session_signs_in_no_one(value: str | None) -> None:
    assert dashboard.session_advertiser(SECRET, value, KEYS, T0) is None


def _report(
    group_by: str, rows: list[tuple[date, str, str, str, int]]
) -> tuple[ReportQuery, Report]:
    query = report_query(
        "adv_1", date(2027, 1, 13), date(2027, 1, 15), [group_by], date(2027, 1, 15)
    )
    stats = [
        StatRow(day, metric, "adv_1", "cmp_1", "cr_1", publisher, category, amount)
        for day, metric, publisher, category, amount in rows
    ]
    return query, build_report(query, stats, {})


ROWS = [
    (date(2027, 1, 13), "impressions", "pub_1", "social", 10),
    (date(2027, 1, 13), "clicks", "pub_1", "social", 2),
    (date(2027, 1, 15), "impressions", "pub_2", "games", 5),
    (date(2027, 1, 15), "conversion_click", "pub_1", "social", 1),
]


def test_the_daily_trend_has_every_day_of_the_range_with_zero_on_quiet_days() -> None:
    query, by_day = _report("day", ROWS)
    _, by_category = _report("site_category", ROWS)
    daily = dashboard.chart_data(by_category, by_day, query.days)["daily"]
    assert daily["labels"] == ["2027-01-13", "2027-01-14", "2027-01-15"]
    assert daily["impressions"] == [10, 0, 5]
    assert daily["clicks"] == [2, 0, 0]
    assert daily["conversions"] == [0, 0, 1]


def test_the_category_chart_has_conversions_by_site_category() -> None:
    query, by_day = _report("day", ROWS)
    _, by_category = _report("site_category", ROWS)
    chart = dashboard.chart_data(by_category, by_day, query.days)["by_category"]
    assert chart["labels"] == ["games", "social"]
    assert chart["conversions"] == [0, 1]
