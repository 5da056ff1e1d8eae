"""Advertisers: the shops whose buyers we bring back."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_HOSTNAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def _hostname(value: str) -> str:
    lowered = value.strip().lower().rstrip(".")
    if not _HOSTNAME.fullmatch(lowered):
        raise ValueError("must be a domain name such as shop.example.com")
    return lowered


Domain = Annotated[str, AfterValidator(_hostname)]
Name = Annotated[str, Field(min_length=1, max_length=200)]

# The last click and view are kept at least this long (store/tracking.py), so no window
# may be longer.
MAX_WINDOW_DAYS = 30
WindowDays = Annotated[int, Field(ge=0, le=MAX_WINDOW_DAYS)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
CLICK_WINDOW_DESCRIPTION = (
    "A purchase up to this many days after a click on one of the advertiser's ads is a "
    f"click-through conversion (0 to {MAX_WINDOW_DAYS}; 0: never)."
)
VIEW_WINDOW_DESCRIPTION = (
    "A purchase up to this many days after an impression, with no click in the click "
    f"window, is a view-through conversion (0 to {MAX_WINDOW_DAYS}; 0: never)."
)
CURRENCY_DESCRIPTION = (
    "ISO 4217 code of reports' revenue and cost; purchases in another currency count as "
    "conversions without revenue. Unset: every purchase's value is added as sent."
)


class AdvertiserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Book Shop",
                    "domain": "books.example.com",
                    "click_window_days": 7,
                    "view_window_days": 1,
                    "currency": "EUR",
                }
            ]
        },
    )

    name: Name
    domain: Domain = Field(description="The shop's site, e.g. shop.example.com.")
    click_window_days: WindowDays = Field(7, description=CLICK_WINDOW_DESCRIPTION)
    view_window_days: WindowDays = Field(1, description=VIEW_WINDOW_DESCRIPTION)
    currency: Currency | None = Field(None, description=CURRENCY_DESCRIPTION)


class AdvertiserUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Books", "click_window_days": 14}]},
    )

    name: Name | None = None
    domain: Domain | None = None
    click_window_days: WindowDays | None = Field(None, description=CLICK_WINDOW_DESCRIPTION)
    view_window_days: WindowDays | None = Field(None, description=VIEW_WINDOW_DESCRIPTION)
    currency: Currency | None = Field(None, description=CURRENCY_DESCRIPTION)


class Advertiser(BaseModel):
    """Stored form. ``s2s_secret`` signs server-to-server events and is never listed."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    domain: str
    pixel_id: str
    s2s_secret: str
    created_at: datetime
    # Stored before attribution existed: the defaults.
    click_window_days: int = 7
    view_window_days: int = 1
    currency: str | None = None


def new_advertiser(create: AdvertiserCreate, now: float) -> Advertiser:
    return Advertiser(
        id="adv_" + secrets.token_hex(6),
        name=create.name,
        domain=create.domain,
        pixel_id="px_" + secrets.token_hex(8),
        s2s_secret=new_secret(),
        created_at=datetime.fromtimestamp(now, UTC),
        click_window_days=create.click_window_days,
        view_window_days=create.view_window_days,
        currency=create.currency,
    )


def new_secret() -> str:
    return "s2s_" + secrets.token_urlsafe(32)
