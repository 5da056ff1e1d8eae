"""Campaigns: whom to show what, where, how often, and at what price."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from retarget.advertisers import Name
from retarget.creatives import Creative, Format, creative_format
from retarget.errors import InvalidInput
from retarget.publishers import SiteCategory, Size

MAX_CAP_SECONDS = 400 * 86_400


class Status(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Pacing(StrEnum):
    EVEN = "even"  # spread the daily limit over the day
    ASAP = "asap"  # serve as fast as demand allows


class FrequencyCap(BaseModel):
    """At most ``impressions`` to one user in any ``seconds`` (a sliding window)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    impressions: int = Field(ge=1, le=1_000_000)
    seconds: int = Field(ge=1, le=MAX_CAP_SECONDS)


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    total_impressions: int | None = Field(None, ge=1)
    daily_impressions: int | None = Field(None, ge=1)
    pacing: Pacing = Pacing.EVEN


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]
Ids = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=1000)]


class CampaignFields(BaseModel):
    """Everything a client sets on a campaign (creatives are managed alongside)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    status: Status = Status.ACTIVE
    start: UtcTime | None = Field(None, description="Flight start (UTC); unset: now.")
    end: UtcTime | None = Field(None, description="Flight end (UTC); unset: open-ended.")
    audience_ids: Ids = Field(min_length=1, description="The user must be in at least one.")
    exclude_audience_ids: Ids = Field(default_factory=list)
    site_categories: list[SiteCategory] = Field(
        default_factory=list, description="Empty: every category."
    )
    publisher_allow: Ids = Field(default_factory=list, description="Empty: every publisher.")
    publisher_deny: Ids = Field(default_factory=list)
    formats: list[Format] = Field(default_factory=lambda: list(Format))
    sizes: list[Size] = Field(default_factory=list, description="Empty: any size.")
    frequency_caps: list[FrequencyCap] = Field(default_factory=list, max_length=10)
    min_interval_seconds: int = Field(0, ge=0, le=MAX_CAP_SECONDS)
    budget: Budget = Field(default_factory=Budget)
    bid_cpm: float = Field(gt=0, le=10_000, description="Price per 1,000 impressions.")
    priority: int = Field(1, ge=0, le=100, description="Higher always wins over lower.")
    repeat_in_request: bool = Field(
        False, description="May fill several placements of one request."
    )

    @field_validator("end")
    @classmethod
    def _flight_is_ordered(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if start is not None and end is not None and end <= start:
            raise ValueError("must be after start")
        return end


class Campaign(CampaignFields):
    id: str
    advertiser_id: str
    created_at: datetime
    creatives: list[Creative] = Field(default_factory=list, max_length=50)


class CampaignCreate(CampaignFields):
    advertiser_id: str | None = Field(None, description="Defaults to the advertiser key's own.")
    creatives: list[Creative] = Field(default_factory=list, max_length=50)


class CampaignUpdate(BaseModel):
    """PATCH body: any field of CampaignFields."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "paused"}]}
    )

    name: Name | None = None
    status: Status | None = None
    start: UtcTime | None = None
    end: UtcTime | None = None
    audience_ids: Ids | None = None
    exclude_audience_ids: Ids | None = None
    site_categories: list[SiteCategory] | None = None
    publisher_allow: Ids | None = None
    publisher_deny: Ids | None = None
    formats: list[Format] | None = None
    sizes: list[Size] | None = None
    frequency_caps: list[FrequencyCap] | None = Field(None, max_length=10)
    min_interval_seconds: int | None = Field(None, ge=0, le=MAX_CAP_SECONDS)
    budget: Budget | None = None
    bid_cpm: float | None = Field(None, gt=0, le=10_000)
    priority: int | None = Field(None, ge=0, le=100)
    repeat_in_request: bool | None = None


def new_campaign(create: CampaignCreate, advertiser_id: str, now: float) -> Campaign:
    fields = create.model_dump(exclude={"advertiser_id", "creatives"})
    return Campaign(
        id="cmp_" + secrets.token_hex(6),
        advertiser_id=advertiser_id,
        created_at=datetime.fromtimestamp(now, UTC),
        creatives=list(create.creatives),
        **fields,
    )


def check_references(
    campaign: Campaign,
    audience_owner: dict[str, str],
    publisher_ids: set[str] | frozenset[str],
    previous: Campaign | None = None,
) -> None:
    """Raise InvalidInput unless every referenced id exists and belongs to the advertiser,
    and every creative's format is one the campaign allows.

    Ids the campaign already held (``previous``) are not checked again: deleting a
    publisher or an audience must not make its campaigns impossible to edit or pause."""

    def known(name: str) -> set[str]:
        return set(getattr(previous, name)) if previous is not None else set()

    for name in ("audience_ids", "exclude_audience_ids"):
        ids = getattr(campaign, name)
        if len(ids) != len(set(ids)):
            raise InvalidInput("lists an audience twice", field=name)
        for index, audience_id in enumerate(ids):
            if audience_id in known(name):
                continue
            if audience_owner.get(audience_id) != campaign.advertiser_id:
                raise InvalidInput(
                    f"no audience {audience_id} for this advertiser", field=f"{name}.{index}"
                )
    for name in ("publisher_allow", "publisher_deny"):
        for index, publisher_id in enumerate(getattr(campaign, name)):
            if publisher_id not in publisher_ids and publisher_id not in known(name):
                raise InvalidInput(f"no publisher {publisher_id}", field=f"{name}.{index}")
    for index, creative in enumerate(campaign.creatives):
        if creative_format(creative) not in campaign.formats:
            raise InvalidInput(
                f"format {creative.type} is not in the campaign's formats",
                field=f"creatives.{index}.type",
            )
    ids = [c.id for c in campaign.creatives]
    if len(ids) != len(set(ids)):
        raise InvalidInput("creative ids must be unique", field="creatives")
