"""The advertiser dashboard: ``GET /dashboard``, ``POST /dashboard/sign-in``,
``POST /dashboard/sign-out``. Server-rendered; the charts' data is a JSON block the page's
own script (``static/dashboard.js``) hands to the vendored Chart.js."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from retarget import dashboard, pages
from retarget.catalog import Catalog
from retarget.errors import Unauthorized
from retarget.reports import Dimension, build_report, report_query
from retarget.routes.deps import FreshCatalog

router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)

# The cookie is sent to /dashboard only, never cross-site on a sub-request (SameSite=Lax),
# and no script can read it.
_COOKIE = {"path": "/dashboard", "secure": True, "httponly": True, "samesite": "lax"}
_MAX_FORM_BYTES = 4096


def _page(template: str, status_code: int = 200, **context: object) -> Response:
    return HTMLResponse(
        pages.render(template, **context), status_code=status_code, headers=pages.PAGE_HEADERS
    )


def _secret(request: Request) -> str:
    return request.state.settings.secret_key.get_secret_value()


def _signed_in(request: Request, catalog: Catalog) -> str | None:
    return dashboard.session_advertiser(
        _secret(request),
        request.cookies.get(dashboard.SESSION_COOKIE),
        catalog.api_keys,
        request.state.clock.now(),
    )


@router.get("")
async def show(
    request: Request,
    catalog: FreshCatalog,
    start: Annotated[date | None, Query(description="First UTC day.")] = None,
    end: Annotated[date | None, Query(description="Last UTC day, included.")] = None,
) -> Response:
    """The sign-in form, or the signed-in advertiser's campaigns and reports."""
    advertiser_id = _signed_in(request, catalog)
    if advertiser_id is None or advertiser_id not in catalog.advertisers:
        return _page("dashboard_signin.html", error=None)
    state = request.state
    today = datetime.fromtimestamp(state.clock.now(), UTC).date()
    by_category = report_query(advertiser_id, start, end, ["site_category"], today)
    by_day = replace(by_category, group_by=(Dimension.DAY,))
    by_publisher = replace(by_category, group_by=(Dimension.PUBLISHER,))

    # This worker's latest counts, for the reports (as GET /v1/reports does) and the spend.
    await state.counters.flush()
    stats = await state.reports.stat_rows(by_category.days, advertiser_id)
    reports = {
        q.group_by[0]: build_report(q, stats, catalog.campaigns)
        for q in (by_category, by_day, by_publisher)
    }
    campaigns = catalog.campaigns_of(advertiser_id)
    spend = await state.counters.global_spend([c.id for c in campaigns])
    return _page(
        "dashboard.html",
        advertiser=catalog.advertisers[advertiser_id],
        period=by_category,
        campaigns=dashboard.campaign_rows(campaigns, spend),
        totals=reports[Dimension.SITE_CATEGORY].totals,
        categories=dashboard.category_rows(reports[Dimension.SITE_CATEGORY]),
        publishers=dashboard.publisher_rows(reports[Dimension.PUBLISHER], catalog.publishers),
        charts=dashboard.chart_data(
            reports[Dimension.SITE_CATEGORY], reports[Dimension.DAY], by_category.days
        ),
    )


@router.post("/sign-in")
async def sign_in(request: Request, catalog: FreshCatalog) -> Response:
    """Check the key from the form; on success the browser gets a signed session cookie."""
    body = await request.body()
    try:
        form = parse_qs(body[:_MAX_FORM_BYTES].decode("utf-8", "replace"), max_num_fields=4)
    except ValueError:  # more fields than a sign-in form has: no key we could check
        form = {}
    key = (form.get("api_key") or [""])[0]
    try:
        session = dashboard.sign_in(
            _secret(request), key, catalog.api_keys, request.state.clock.now()
        )
    except Unauthorized as exc:
        return _page("dashboard_signin.html", status_code=401, error=exc.message)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        dashboard.SESSION_COOKIE, session, max_age=dashboard.SESSION_SECONDS, **_COOKIE
    )
    return response


@router.post("/sign-out")
async def sign_out() -> Response:
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(dashboard.SESSION_COOKIE, **_COOKIE)
    return response
