"""Server-to-server events: a batch from an advertiser's backend, validated event by event."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from retarget.errors import InvalidInput, error_field, pydantic_message
from retarget.events import MAX_TEXT, Event, EventType
from retarget.users import Namespace, UserRef, parse_user

MAX_BATCH = 1000
FUTURE_TOLERANCE = 300  # seconds of clock skew allowed for an event's ts
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")


def _printable(value: str) -> str:
    if not _PRINTABLE.fullmatch(value):
        raise ValueError("contains control characters")
    return value


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_printable)]


class UserIds(BaseModel):
    """One or more identifiers of the same person; each is stored in its own namespace."""

    model_config = ConfigDict(extra="forbid")

    cookie: str | None = Field(None, description="Our rt_uid cookie value.")
    email: str | None = Field(None, description="SHA-256 hex of the trimmed, lower-cased e-mail.")
    maid: str | None = Field(None, description="Mobile advertising id (IDFA/GAID), a UUID.")

    @model_validator(mode="after")
    def _at_least_one(self) -> UserIds:
        if not (self.cookie or self.email or self.maid):
            raise ValueError("needs at least one of cookie, email, maid")
        return self


class ServerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Text = Field(description="Unique per advertiser; the same id is counted once.")
    type: EventType = EventType.PURCHASE
    ts: datetime = Field(description="When it happened: unix seconds or ISO 8601.")
    user: UserIds
    sku: Text | None = None
    product_name: Text | None = None
    category: Text | None = None
    value: float | None = Field(None, ge=0, le=1e10)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None


class EventBatch(BaseModel):
    """The request body of ``POST /v1/events``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "event_id": "order-10017",
                            "type": "purchase",
                            "ts": "2026-11-23T10:15:00Z",
                            "user": {"maid": "6d92078a-8246-4ba4-ae5b-76104861e7dc"},
                            "sku": "BK-0451",
                            "product_name": "The Hobbit",
                            "category": "books",
                            "value": 24.9,
                            "currency": "EUR",
                        }
                    ]
                }
            ]
        }
    )

    events: list[ServerEvent] = Field(min_length=1, max_length=MAX_BATCH)


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    index: int
    event_id: str
    event: Event
    users: list[UserRef]


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    index: int
    event_id: str | None
    reason: str
    field: str | None


def parse_batch(
    payload: Any, advertiser_id: str, now: float, max_age: float
) -> tuple[list[ParsedEvent], list[RejectedEvent]]:
    """Validate each event on its own: one bad event is reported, the others go through."""
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise InvalidInput("body must be an object with an events list", field="events")
    items = payload["events"]
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidInput(f"must hold 1 to {MAX_BATCH} events", field="events")

    parsed, rejected = [], []
    for index, item in enumerate(items):
        raw_id = item.get("event_id") if isinstance(item, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        try:
            parsed.append(_parse_one(index, item, advertiser_id, now, max_age))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = error_field(error)
            rejected.append(RejectedEvent(index, event_id, pydantic_message(error), field))
        except InvalidInput as exc:
            rejected.append(RejectedEvent(index, event_id, exc.message, exc.field))
    return parsed, rejected


def _parse_one(
    index: int, item: Any, advertiser_id: str, now: float, max_age: float
) -> ParsedEvent:
    event = ServerEvent.model_validate(item)
    ts = (event.ts if event.ts.tzinfo else event.ts.replace(tzinfo=UTC)).timestamp()
    if ts > now + FUTURE_TOLERANCE:
        raise InvalidInput("is in the future", field="ts")
    if ts < now - max_age:
        raise InvalidInput(f"is older than {int(max_age // 86400)} days", field="ts")
    users = []
    for namespace in Namespace:
        raw = getattr(event.user, namespace.value)
        if raw:
            try:
                users.append(parse_user(namespace.value, raw))
            except InvalidInput as exc:
                raise InvalidInput(exc.message, field=f"user.{namespace.value}") from None
    return ParsedEvent(
        index=index,
        event_id=event.event_id,
        event=Event(
            advertiser_id=advertiser_id,
            type=event.type,
            ts=ts,
            sku=event.sku,
            product=event.product_name,
            category=event.category,
            value=event.value,
            currency=event.currency,
            dedup_id=event.event_id,
        ),
        users=users,
    )
