"""``GET /v1/reports``: an advertiser's decisions, impressions, clicks, conversions and ROI."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from retarget.api_keys import Role
from retarget.errors import Forbidden, InvalidInput, NotFound
from retarget.reports import MAX_DAYS, build_report, report_query
from retarget.routes.deps import Caller, FreshCatalog

router = APIRouter(tags=["reports"])

_EXAMPLE_METRICS = {
    "decisions": 1200,
    "impressions": 1000,
    "clicks": 20,
    "conversions_click_through": 3,
    "conversions_view_through": 1,
    "conversions": 4,
    "revenue": 120.5,
    "cost": 2.5,
    "ctr": 0.02,
    "conversion_rate": 0.15,
    "cost_per_conversion": 0.625,
    "roas": 48.2,
}
_EXAMPLE = {
    "advertiser_id": "adv_1a2b3c4d5e6f",
    "start": "2027-01-09",
    "end": "2027-01-15",
    "group_by": ["day", "site_category"],
    "rows": [{"day": "2027-01-15", "site_category": "social", **_EXAMPLE_METRICS}],
    "totals": _EXAMPLE_METRICS,
}


class ReportMetrics(BaseModel):
    decisions: int = Field(description="Ads chosen by the decision endpoint.")
    impressions: int = Field(description="Impression URLs fetched (once per ad).")
    clicks: int = Field(description="Click URLs followed (once per ad).")
    conversions_click_through: int = Field(description="Purchases credited to a click.")
    conversions_view_through: int = Field(description="Purchases credited to a view only.")
    conversions: int = Field(description="Both kinds of conversions.")
    revenue: float = Field(description="Sum of the credited purchases' values.")
    cost: float = Field(description="impressions x the campaign's bid_cpm / 1000.")
    ctr: float | None = Field(description="clicks / impressions; null without impressions.")
    conversion_rate: float | None = Field(
        description="conversions_click_through / clicks; null without clicks."
    )
    cost_per_conversion: float | None = Field(description="cost / conversions.")
    roas: float | None = Field(description="revenue / cost; null without cost.")


class ReportRow(ReportMetrics):
    """A row has only the dimension columns that were asked for."""

    day: date | None = None
    campaign_id: str | None = None
    campaign_name: str | None = Field(None, description="null for a deleted campaign.")
    creative_id: str | None = None
    publisher_id: str | None = None
    site_category: str | None = None


class ReportOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    advertiser_id: str
    start: date
    end: date
    group_by: list[str]
    rows: list[ReportRow]
    totals: ReportMetrics


@router.get(
    "/v1/reports",
    response_model=ReportOut,
    summary="An advertiser's report for a range of UTC days, by any dimensions (JSON or CSV)",
    responses={
        200: {
            "content": {
                "application/json": {"example": _EXAMPLE},
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "day,site_category,decisions,...\r\n2027-01-15,social,1200,...\r\n",
                },
            }
        },
        403: {"description": "Another advertiser's report, or a publisher key"},
        404: {"description": "No such advertiser"},
        422: {"description": "Bad dates or group_by, naming the field"},
    },
)
async def get_report(
    request: Request,
    caller: Caller,
    catalog: FreshCatalog,
    advertiser_id: Annotated[
        str | None, Query(description="Required with the admin token; defaults to the key's own.")
    ] = None,
    start: Annotated[
        date | None, Query(description="First UTC day (YYYY-MM-DD); default: end - 6 days.")
    ] = None,
    end: Annotated[
        date | None,
        Query(description=f"Last UTC day, included; default: today. At most {MAX_DAYS} days."),
    ] = None,
    group_by: Annotated[
        list[str] | None,
        Query(
            description="Any of day, campaign, creative, publisher, site_category: repeated or "
            "comma-separated. None: one row of totals."
        ),
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="Overrides the Accept header.")
    ] = None,
) -> Response:
    """Advertiser keys see only their own advertiser; the admin any."""
    if caller.role is Role.PUBLISHER:
        raise Forbidden("a publisher key cannot read reports", field="Authorization")
    if advertiser_id is None:
        if caller.role is not Role.ADVERTISER:
            raise InvalidInput("required with the admin token", field="advertiser_id")
        advertiser_id = caller.owner_id or ""
    caller.require_advertiser(advertiser_id)
    if advertiser_id not in catalog.advertisers:
        raise NotFound(f"no advertiser {advertiser_id}", field="advertiser_id")
    state = request.state
    today = datetime.fromtimestamp(state.clock.now(), UTC).date()
    query = report_query(advertiser_id, start, end, group_by, today)

    await state.counters.flush()  # this worker's latest counts; the others' within a flush
    stats = await state.reports.stat_rows(query.days, advertiser_id)
    report = build_report(query, stats, catalog.campaigns)

    wants_csv = (
        "text/csv" in request.headers.get("accept", "") if format is None else format == "csv"
    )
    if wants_csv:
        return Response(report.as_csv(), media_type="text/csv; charset=utf-8")
    return Response(orjson.dumps(report.as_json()), media_type="application/json")
