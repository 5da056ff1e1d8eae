"""Advertiser reports: raw report counters plus the campaign catalog in, a report out (pure).

The counters (``store/counters.py``) are one number per UTC day, metric and
advertiser|campaign|creative|publisher|site category. A report keeps one advertiser's,
adds them up by the dimensions asked for, prices impressions at each campaign's
``bid_cpm`` and derives the ratios. Everything here is plain data: no Redis, no HTTP.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from retarget.attribution import MICROS
from retarget.campaigns import Campaign
from retarget.errors import InvalidInput

MAX_DAYS = 400  # report counters are kept 400 days (store/keys.py STATS_TTL)
DEFAULT_DAYS = 7


class Dimension(StrEnum):
    DAY = "day"
    CAMPAIGN = "campaign"
    CREATIVE = "creative"
    PUBLISHER = "publisher"
    SITE_CATEGORY = "site_category"


class Metric(StrEnum):
    """The raw counters, as named in the ``{stats}:<day>`` hashes."""

    DECISIONS = "decisions"
    IMPRESSIONS = "impressions"
    CLICKS = "clicks"
    CONVERSION_CLICK = "conversion_click"
    CONVERSION_VIEW = "conversion_view"
    REVENUE_MICROS = "revenue_micros"


@dataclass(frozen=True, slots=True)
class StatRow:
    """One raw counter of one day: ``{stats}:<day>`` field ``metric|adv|cmp|cr|pub|cat``."""

    day: date
    metric: str
    advertiser_id: str
    campaign_id: str
    creative_id: str
    publisher_id: str
    site_category: str
    amount: int


def parse_stat(day: date, field: str, value: str) -> StatRow | None:
    """A stored counter as a row; None for a field of another shape (ignored by reports)."""
    parts = field.split("|")
    if len(parts) != 6:
        return None
    try:
        amount = int(value)
    except ValueError:
        try:
            amount = round(float(value))
        except ValueError:
            return None
    return StatRow(day, *parts, amount)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ReportQuery:
    advertiser_id: str
    start: date
    end: date
    group_by: tuple[Dimension, ...]

    @property
    def days(self) -> list[date]:
        """Every day of the range, oldest first (both ends included)."""
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def parse_group_by(values: Sequence[str] | None) -> tuple[Dimension, ...]:
    """``["day,campaign", "publisher"]`` -> the dimensions, in the order given, once each."""
    found: list[Dimension] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            try:
                dimension = Dimension(name)
            except ValueError:
                allowed = ", ".join(d.value for d in Dimension)
                raise InvalidInput(
                    f"unknown dimension {name[:40]!r}; use any of {allowed}", field="group_by"
                ) from None
            if dimension not in found:
                found.append(dimension)
    return tuple(found)


def report_query(
    advertiser_id: str,
    start: date | None,
    end: date | None,
    group_by: Sequence[str] | None,
    today: date,
) -> ReportQuery:
    """Validate a report's parameters; unset dates mean the last 7 days up to ``today``."""
    if end is None:
        end = max(today, start) if start is not None else today
    if start is None:
        try:
            start = end - timedelta(days=DEFAULT_DAYS - 1)
        except OverflowError:
            raise InvalidInput(
                "is before the first day there can be data for", field="end"
            ) from None
    if end < start:
        raise InvalidInput("must not be before start", field="end")
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"a report covers at most {MAX_DAYS} days", field="start")
    return ReportQuery(advertiser_id, start, end, parse_group_by(group_by))


# What each row and the totals carry, in this order (the CSV header after the dimensions).
METRIC_COLUMNS = (
    "decisions",
    "impressions",
    "clicks",
    "conversions_click_through",
    "conversions_view_through",
    "conversions",
    "revenue",
    "cost",
    "ctr",
    "conversion_rate",
    "cost_per_conversion",
    "roas",
)


@dataclass(slots=True)
class _Sums:
    decisions: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions_click: int = 0
    conversions_view: int = 0
    revenue_micros: int = 0
    cost_micros: int = 0  # impressions x bid_cpm / 1000, in millionths: exact sums

    def add(self, row: StatRow, bid_cpm: float) -> None:
        metric, amount = row.metric, row.amount
        if metric == Metric.DECISIONS:
            self.decisions += amount
        elif metric == Metric.IMPRESSIONS:
            self.impressions += amount
            self.cost_micros += round(amount * bid_cpm * MICROS / 1000)
        elif metric == Metric.CLICKS:
            self.clicks += amount
        elif metric == Metric.CONVERSION_CLICK:
            self.conversions_click += amount
        elif metric == Metric.CONVERSION_VIEW:
            self.conversions_view += amount
        elif metric == Metric.REVENUE_MICROS:
            self.revenue_micros += amount

    def metrics(self) -> dict[str, Any]:
        conversions = self.conversions_click + self.conversions_view
        revenue, cost = self.revenue_micros / MICROS, self.cost_micros / MICROS
        return {
            "decisions": self.decisions,
            "impressions": self.impressions,
            "clicks": self.clicks,
            "conversions_click_through": self.conversions_click,
            "conversions_view_through": self.conversions_view,
            "conversions": conversions,
            "revenue": revenue,
            "cost": cost,
            "ctr": _ratio(self.clicks, self.impressions),
            "conversion_rate": _ratio(self.conversions_click, self.clicks),
            "cost_per_conversion": _ratio(self.cost_micros / MICROS, conversions),
            "roas": _ratio(self.revenue_micros, self.cost_micros),
        }


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


@dataclass(frozen=True, slots=True)
class Report:
    query: ReportQuery
    rows: list[dict[str, Any]]
    totals: dict[str, Any]

    @property
    def columns(self) -> list[str]:
        """Column names of every row, dimensions first."""
        return [*_dimension_columns(self.query.group_by), *METRIC_COLUMNS]

    def as_json(self) -> dict[str, Any]:
        query = self.query
        return {
            "advertiser_id": query.advertiser_id,
            "start": query.start.isoformat(),
            "end": query.end.isoformat(),
            "group_by": [d.value for d in query.group_by],
            "rows": self.rows,
            "totals": self.totals,
        }

    def as_csv(self) -> str:
        """A header line, then the rows (no totals line: sum the columns, or ask without
        ``group_by``). Empty cells for null ratios."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        columns = self.columns
        writer.writerow(columns)
        for row in self.rows:
            writer.writerow([_csv_cell(row[c]) for c in columns])
        return out.getvalue()


def _csv_cell(value: Any) -> Any:
    """Empty for null; text a spreadsheet would run as a formula (a campaign named
    ``=HYPERLINK(...)``) gets a leading apostrophe, as OWASP advises for CSV exports."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _dimension_columns(group_by: Iterable[Dimension]) -> list[str]:
    columns: list[str] = []
    for dimension in group_by:
        if dimension is Dimension.CAMPAIGN:
            columns += ["campaign_id", "campaign_name"]
        elif dimension is Dimension.CREATIVE:
            columns.append("creative_id")
        elif dimension is Dimension.PUBLISHER:
            columns.append("publisher_id")
        else:
            columns.append(dimension.value)
    return columns


def _key(row: StatRow, dimension: Dimension) -> str:
    if dimension is Dimension.DAY:
        return row.day.isoformat()
    if dimension is Dimension.CAMPAIGN:
        return row.campaign_id
    if dimension is Dimension.CREATIVE:
        return row.creative_id
    if dimension is Dimension.PUBLISHER:
        return row.publisher_id
    return row.site_category


def build_report(
    query: ReportQuery, stats: Iterable[StatRow], campaigns: Mapping[str, Campaign]
) -> Report:
    """Add up the advertiser's counters of the query's days by its dimensions.

    Cost prices impressions at each campaign's current ``bid_cpm``; a deleted campaign's
    impressions cost 0 (its price is gone with it). Ratios are null when their
    denominator is 0. Rows are sorted by their dimension values."""
    groups: dict[tuple[str, ...], _Sums] = {}
    totals = _Sums()
    for row in stats:
        if row.advertiser_id != query.advertiser_id or not query.start <= row.day <= query.end:
            continue
        campaign = campaigns.get(row.campaign_id)
        bid_cpm = campaign.bid_cpm if campaign is not None else 0.0
        key = tuple(_key(row, d) for d in query.group_by)
        groups.setdefault(key, _Sums()).add(row, bid_cpm)
        totals.add(row, bid_cpm)
    rows = []
    for key in sorted(groups) if query.group_by else ():
        row: dict[str, Any] = {}
        for dimension, value in zip(query.group_by, key, strict=True):
            if dimension is Dimension.CAMPAIGN:
                campaign = campaigns.get(value)
                row["campaign_id"] = value
                row["campaign_name"] = campaign.name if campaign is not None else None
            else:
                row[_dimension_columns([dimension])[0]] = value
        rows.append(row | groups[key].metrics())
    if not query.group_by:
        rows = [totals.metrics()]
    return Report(query, rows, totals.metrics())
