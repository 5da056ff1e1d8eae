"""Audiences: rules over events ("bought books in the last 30 days") and who joins them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from retarget.events import MAX_TEXT, Event, EventType

DAY = 86_400
Label = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class AudienceRule(BaseModel):
    """Which events put a user in the audience, for how long, and when they may be retargeted."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "bought books in the last 30 days",
                    "event": "purchase",
                    "categories": ["books"],
                    "membership_days": 30,
                    "delay_days": 3,
                }
            ]
        },
    )

    name: Annotated[str, Field(min_length=1, max_length=200)]
    event: EventType = EventType.PURCHASE
    categories: list[Label] = Field(
        default_factory=list, max_length=100, description="Any of these (empty: any category)."
    )
    skus: list[Label] = Field(
        default_factory=list, max_length=1000, description="Any of these (empty: any sku)."
    )
    min_value: float | None = Field(None, ge=0, description="Only orders worth at least this.")
    membership_days: int = Field(30, ge=1, le=540, description="How long a buyer stays in.")
    delay_days: int = Field(
        0,
        ge=0,
        le=539,
        description="Days after the event before the buyer may be retargeted.",
    )

    @field_validator("delay_days")
    @classmethod
    def _delay_is_shorter_than_membership(cls, delay: int, info: ValidationInfo) -> int:
        membership_days = info.data.get("membership_days")
        if membership_days is not None and delay >= membership_days:
            raise ValueError("must be less than membership_days")
        return delay


class AudienceUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"membership_days": 60, "delay_days": 7}]}
    )

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    event: EventType | None = None
    categories: list[Label] | None = Field(None, max_length=100)
    skus: list[Label] | None = Field(None, max_length=1000)
    min_value: float | None = Field(None, ge=0)
    membership_days: int | None = Field(None, ge=1, le=540)
    delay_days: int | None = Field(None, ge=0, le=539)


class Audience(AudienceRule):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    advertiser_id: str


def new_audience(advertiser_id: str, rule: AudienceRule) -> Audience:
    return Audience(id="aud_" + secrets.token_hex(5), advertiser_id=advertiser_id, **dict(rule))


def matches(audience: Audience, event: Event) -> bool:
    """Does this event put its user into this audience?"""
    if event.advertiser_id != audience.advertiser_id or event.type != audience.event:
        return False
    if audience.categories and event.category not in audience.categories:
        return False
    if audience.skus and event.sku not in audience.skus:
        return False
    return audience.min_value is None or (
        event.value is not None and event.value >= audience.min_value
    )


@dataclass(frozen=True, slots=True)
class Membership:
    """In ``audience_id`` from ``since`` (the latest qualifying event) until ``expires``."""

    audience_id: str
    since: int
    expires: int


def memberships_for(event: Event, audiences: tuple[Audience, ...], now: float) -> list[Membership]:
    """The memberships an event creates or renews; none for events already past every window."""
    since = int(event.ts)
    joined = []
    for audience in audiences:
        expires = since + audience.membership_days * DAY
        if expires > now and matches(audience, event):
            joined.append(Membership(audience.id, since, expires))
    return joined


def eligible_from(audience: Audience, membership: Membership) -> int:
    """When a member may first be retargeted: ``delay_days`` after the latest qualifying event."""
    return membership.since + audience.delay_days * DAY
