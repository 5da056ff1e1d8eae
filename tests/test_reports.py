"""Reports as pure functions: counters in, rows and totals out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retarget.campaigns import Campaign
from retarget.errors import InvalidInput
from retarget.reports import (
    Dimension,
    Metric,
    ReportQuery,
    StatRow,
    build_report,
    parse_group_by,
    parse_stat,
    report_query,
)

ADV = "adv_1"
JAN = date(2027, 1, 15)


def campaign(campaign_id: str, bid_cpm: float) -> Campaign:
    return Campaign(
        id=campaign_id,
        advertiser_id=ADV,
        name=f"campaign {campaign_id}",
        audience_ids=["aud_1"],
        bid_cpm=bid_cpm,
        created_at=datetime(2027, 1, 1, tzinfo=UTC),
    )


CAMPAIGNS = {"c1": campaign("c1", 2.5), "c2": campaign("c2", 4.0)}


def row(metric: str, amount: int, *, day: date = JAN, cmp: str = "c1", **dims: str) -> StatRow:
    return StatRow(
        day,
        metric,
        dims.get("adv", ADV),
        cmp,
        dims.get("cr", "cr1"),
        dims.get("pub", "pub1"),
        dims.get("cat", "social"),
        amount,
    )


def query(*group_by: Dimension) -> ReportQuery:
    return ReportQuery(ADV, JAN, date(2027, 1, 16), group_by)


def test_cost_prices_each_campaigns_impressions_at_its_own_bid() -> None:
    stats = [row("impressions", 1000, cmp="c1"), row("impressions", 500, cmp="c2")]

    report = build_report(query(Dimension.CAMPAIGN), stats, CAMPAIGNS)

    assert [(r["campaign_id"], r["cost"]) for r in report.rows] == [("c1", 2.5), ("c2", 2.0)]
    assert report.totals["cost"] == 4.5


def test_ratios_are_derived_from_the_sums_and_null_without_a_denominator() -> None:
    stats = [
        row("impressions", 1000),
        row("clicks", 20),
        row("conversion_click", 5),
        row("conversion_view", 3),
        row("revenue_micros", 250_500_000),
    ]

    totals = build_report(query(), stats, CAMPAIGNS).totals
    empty = build_report(query(), [], CAMPAIGNS).totals

    assert totals["conversions"] == 8
    assert totals["revenue"] == 250.5
    assert totals["ctr"] == 0.02
    assert totals["conversion_rate"] == 0.25
    assert totals["cost_per_conversion"] == 2.5 / 8
    assert totals["roas"] == round(250.5 / 2.5, 6)
    assert [empty[k] for k in ("ctr", "conversion_rate", "cost_per_conversion", "roas")] == [
        None
    ] * 4


def test_a_deleted_campaigns_impressions_cost_nothing_and_its_name_is_null() -> None:
    report = build_report(query(Dimension.CAMPAIGN), [row("impressions", 10, cmp="gone")], {})

    assert report.rows[0]["campaign_name"] is None
    assert report.rows[0]["cost"] == 0


def test_rows_of_other_advertisers_and_other_days_are_left_out() -> None:
    stats = [
        row("decisions", 1),
        row("decisions", 10, adv="adv_2"),
        row("decisions", 100, day=date(2027, 1, 17)),
    ]

    assert build_report(query(), stats, CAMPAIGNS).totals["decisions"] == 1


def test_group_by_accepts_repeats_and_commas_and_keeps_the_order_given() -> None:
    assert parse_group_by(["site_category,day", "day", " campaign "]) == (
        Dimension.SITE_CATEGORY,
        Dimension.DAY,
        Dimension.CAMPAIGN,
    )
    with pytest.raises(InvalidInput) as error:
        parse_group_by(["country"])
    assert error.value.field == "group_by"


def test_a_report_spans_at_most_400_days() -> None:
    assert len(report_query(ADV, date(2026, 1, 1), date(2027, 2, 4), None, JAN).days) == 400
    with pytest.raises(InvalidInput) as error:
        report_query(ADV, date(2026, 1, 1), date(2027, 2, 5), None, JAN)
    assert error.value.field == "start"


def test_a_counter_of_another_shape_is_ignored() -> None:
    assert parse_stat(JAN, "decisions|a|b", "3") is None
    assert parse_stat(JAN, "clicks|a|b|c|d|e", "3") == StatRow(JAN, "clicks", *"abcde", 3)


dimension_values = st.sampled_from(["x", "y"])
stat_rows = st.builds(
    StatRow,
    day=st.sampled_from([JAN, date(2027, 1, 16)]),
    metric=st.sampled_from([m.value for m in Metric]),
    advertiser_id=st.just(ADV),
    campaign_id=st.sampled_from(["c1", "c2", "gone"]),
    creative_id=dimension_values,
    publisher_id=dimension_values,
    site_category=dimension_values,
    amount=st.integers(0, 10**9),
)


@given(
    st.lists(stat_rows, max_size=30),
    st.lists(st.sampled_from(list(Dimension)), unique=True, max_size=5),
)
def test_rows_always_add_up_to_the_totals(stats: list[StatRow], group_by: list) -> None:
    report = build_report(query(*group_by), stats, CAMPAIGNS)

    for column in ("decisions", "impressions", "clicks", "conversions", "revenue"):
        assert sum(r[column] for r in report.rows) == pytest.approx(report.totals[column])
        exact = [s.amount for s in stats if s.metric == column]
        if column in ("decisions", "impressions", "clicks"):
            assert report.totals[column] == sum(exact)


def test_a_campaign_name_a_spreadsheet_would_run_as_a_formula_is_defused_in_csv() -> None:
    named = {"c1": campaign("c1", 2.5).model_copy(update={"name": '=HYPERLINK("x")'})}

    report = build_report(query(Dimension.CAMPAIGN), [row("impressions", 1)], named)

    assert report.rows[0]["campaign_name"] == '=HYPERLINK("x")'  # JSON keeps the name as is
    assert report.as_csv().splitlines()[1].startswith('c1,"\'=HYPERLINK(""x"")",')
