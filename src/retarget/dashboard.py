"""The advertiser dashboard: its session and what its page shows (pure, no I/O).

An advertiser signs in with one of its API keys. The browser keeps only a signed session
value: ``<advertiser id>.<key hash>.<expiry>.<HMAC>``, never the key itself. The HMAC
(keyed by the service's secret key) makes it unforgeable; the key hash ties it to the key,
so deleting the key (or the advertiser) ends every session signed in with it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from retarget.api_keys import Role, StoredKey, key_hash
from retarget.budgets import Spend
from retarget.campaigns import Campaign
from retarget.errors import Unauthorized
from retarget.publishers import Publisher
from retarget.reports import Report

SESSION_COOKIE = "rt_dash"
SESSION_SECONDS = 8 * 3600
_SESSION = re.compile(r"([A-Za-z0-9_-]{1,64})\.([0-9a-f]{64})\.([0-9]{1,12})\.([0-9a-f]{64})")


def _mac(secret: str, advertiser_id: str, hashed_key: str, expires: int) -> str:
    message = f"dashboard-session|{advertiser_id}|{hashed_key}|{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_in(secret: str, api_key: str, api_keys: Mapping[str, StoredKey], now: float) -> str:
    """The session value for an advertiser's API key; Unauthorized for any other key."""
    hashed = key_hash(api_key.strip())
    stored = api_keys.get(hashed)
    if stored is None or stored.role is not Role.ADVERTISER:
        raise Unauthorized("that is not an advertiser key", field="api_key")
    expires = int(now) + SESSION_SECONDS
    return f"{stored.owner_id}.{hashed}.{expires}.{_mac(secret, stored.owner_id, hashed, expires)}"


def session_advertiser(
    secret: str, value: str | None, api_keys: Mapping[str, StoredKey], now: float
) -> str | None:
    """The advertiser id a session value signs in, or None (absent, forged, expired, or
    its key deleted since)."""
    match = _SESSION.fullmatch(value or "")
    if match is None:
        return None
    advertiser_id, hashed, expires, mac = match.groups()
    if not hmac.compare_digest(mac, _mac(secret, advertiser_id, hashed, int(expires))):
        return None
    if int(expires) <= now:
        return None
    stored = api_keys.get(hashed)
    if stored is None or stored.role is not Role.ADVERTISER or stored.owner_id != advertiser_id:
        return None
    return advertiser_id


# ---- the page ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignRow:
    name: str
    status: str
    pacing: str
    delivered_today: int
    daily_limit: int | None
    delivered_total: int
    total_limit: int | None

    @property
    def pacing_summary(self) -> str:
        today = f"{self.delivered_today:,} today"
        if self.daily_limit is not None:
            today += f" of {self.daily_limit:,} ({self.delivered_today / self.daily_limit:.0%})"
        total = f"{self.delivered_total:,} in total"
        if self.total_limit is not None:
            total += f" of {self.total_limit:,}"
        return f"{today}; {total}"


def campaign_rows(campaigns: Iterable[Campaign], spend: Mapping[str, Spend]) -> list[CampaignRow]:
    """One row per campaign: status, pacing mode and impressions against its budget."""
    rows = []
    for campaign in sorted(campaigns, key=lambda c: (c.created_at, c.id)):
        served = spend.get(campaign.id, Spend())
        rows.append(
            CampaignRow(
                name=campaign.name,
                status=campaign.status.value,
                pacing=campaign.budget.pacing.value,
                delivered_today=served.today,
                daily_limit=campaign.budget.daily_impressions,
                delivered_total=served.total,
                total_limit=campaign.budget.total_impressions,
            )
        )
    return rows


# ---- the reports, as the page shows them -------------------------------------------------
# The figures come from ``reports.build_report`` (the same as GET /v1/reports); this only
# arranges them for the tables and the charts.


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "impressions": row["impressions"],
        "clicks": row["clicks"],
        "conversions": row["conversions"],
        "revenue": row["revenue"],
        "cost": row["cost"],
        "roas": row["roas"],
    }


def category_rows(by_category: Report) -> list[dict[str, Any]]:
    return [{"site_category": r["site_category"], **_figures(r)} for r in by_category.rows]


def publisher_rows(
    by_publisher: Report, publishers: Mapping[str, Publisher]
) -> list[dict[str, Any]]:
    """One row per publisher, named (a deleted publisher keeps its id), most revenue first."""
    rows = []
    for r in by_publisher.rows:
        publisher = publishers.get(r["publisher_id"])
        rows.append(
            {
                "publisher": publisher.name if publisher else r["publisher_id"],
                "site_category": publisher.site_category.value if publisher else "",
                **_figures(r),
            }
        )
    return sorted(rows, key=lambda row: (-row["revenue"], row["publisher"]))


def chart_data(by_category: Report, by_day: Report, days: list[date]) -> dict[str, Any]:
    """What the page's charts plot: ROAS and conversions by site category, and a daily
    trend with every day of the range (0 on days without any count)."""
    daily = {r["day"]: r for r in by_day.rows}
    empty = {"impressions": 0, "clicks": 0, "conversions": 0, "revenue": 0.0}
    trend = [daily.get(day.isoformat(), empty) for day in days]
    return {
        "by_category": {
            "labels": [r["site_category"] for r in by_category.rows],
            "roas": [r["roas"] for r in by_category.rows],
            "conversions": [r["conversions"] for r in by_category.rows],
        },
        "daily": {
            "labels": [day.isoformat() for day in days],
            "impressions": [r["impressions"] for r in trend],
            "clicks": [r["clicks"] for r in trend],
            "conversions": [r["conversions"] for r in trend],
            "revenue": [r["revenue"] for r in trend],
        },
    }
