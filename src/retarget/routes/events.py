"""``POST /v1/events``: purchases and other events from an advertiser's backend."""

from __future__ import annotations

from typing import Literal

import orjson
from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from retarget import signing
from retarget.attribution import Touch, attribute
from retarget.errors import InvalidJson, Unauthorized
from retarget.recording import recordings_for
from retarget.server_events import EventBatch, parse_batch

router = APIRouter(tags=["events"])


class EventResult(BaseModel):
    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = None
    field: str | None = None


class EventsResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


@router.post(
    "/v1/events",
    response_model=EventsResponse,
    summary="Record a batch of up to 1,000 events, signed with the advertiser's secret",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}
            },
        }
    },
    responses={401: {"description": "Missing, wrong or stale signature"}},
)
async def record_events(
    request: Request,
    x_retarget_advertiser: str = Header(description="The advertiser id the events belong to."),
    x_retarget_signature: str | None = Header(
        None, description="t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.' + body)>"
    ),
) -> dict[str, object]:
    """Each event is accepted, a duplicate (``event_id`` seen before), or rejected with a reason."""
    state = request.state
    catalog = state.catalog.current
    advertiser = catalog.advertisers.get(x_retarget_advertiser)
    body = await request.body()
    now = state.clock.now()
    if advertiser is None:
        raise Unauthorized("unknown advertiser", field="X-Retarget-Advertiser")
    tolerance = state.settings.s2s_signature_tolerance_seconds
    signing.verify(advertiser.s2s_secret, body, x_retarget_signature, now, tolerance)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidJson("request body is not valid JSON", field="body") from None

    max_age = state.settings.dedup_window_days * 86400
    parsed, rejected = parse_batch(payload, advertiser.id, now, max_age)
    recordings, owners = [], []
    for item in parsed:
        for recording in recordings_for(item.event, item.users, catalog, now):
            recordings.append(recording)
            owners.append(item.index)
    recorded = await state.users.record_many(recordings, now)  # Redis down: 503, retry

    new: set[int] = set()
    touches: dict[int, list[Touch]] = {}  # of every identifier of the event
    for index, result in zip(owners, recorded, strict=True):
        if result.new:
            new.add(index)
            touches.setdefault(index, []).extend(result.touches)
    for item in parsed:  # one conversion per event, however many identifiers it names
        if touches.get(item.index) and (
            conversion := attribute(item.event, touches[item.index], advertiser)
        ):
            state.counters.conversion(conversion)
            state.metrics.conversion(conversion.touch.kind)
    results = [
        EventResult(
            index=item.index,
            event_id=item.event_id,
            status="accepted" if item.index in new else "duplicate",
        )
        for item in parsed
    ]
    results += [
        EventResult(
            index=r.index, event_id=r.event_id, status="rejected", reason=r.reason, field=r.field
        )
        for r in rejected
    ]
    results.sort(key=lambda r: r.index)
    request.state.metrics.server_events(len(new), len(parsed) - len(new), len(rejected))
    return {
        "accepted": len(new),
        "duplicates": len(parsed) - len(new),
        "rejected": len(rejected),
        "results": results,
    }


__all__ = ["EventBatch", "router"]
