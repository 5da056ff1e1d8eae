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
from datetime import date, timedelta

from retarget.api_keys import Role, StoredKey, key_hash
from retarget.budgets import Spend
from retarget.campaigns import Campaign
from retarget.errors import InvalidInput, Unauthorized

SESSION_COOKIE = "rt_dash"
SESSION_SECONDS = 8 * 3600
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 7
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
class DateRange:
    first: date
    last: date

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def date_range(first: date | None, last: date | None, today: date) -> DateRange:
    """The range the picker asks for; by default the last week up to today."""
    last = last or today
    first = first or last - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if first > last:
        raise InvalidInput("the first day is after the last day", field="from")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidInput(f"at most {MAX_RANGE_DAYS} days at a time", field="from")
    return DateRange(first, last)


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
