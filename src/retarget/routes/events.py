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
    status: Literal["accepted", "duplicate", "spooled", "rejected"]
    reason: str | None = None
    field: str | None = None


class EventsResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    spooled: int = 0
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
    responses={
        401: {"description": "Missing, wrong or stale signature"},
        503: {"description": "Redis is unavailable and the spool is full: nothing recorded"},
    },
)
async def record_events(
    request: Request,
    x_retarget_advertiser: str = Header(description="The advertiser id the events belong to."),
    x_retarget_signature: str | None = Header(
        None, description="t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.' + body)>"
    ),
) -> dict[str, object]:
    """Each event is accepted, a duplicate (``event_id`` seen before), spooled (Redis is
    unavailable: kept on disk, recorded when it is back), or rejected with a reason."""
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
    # Redis down or slow: the batch is fsync'd to the spool and answered "spooled" (it will
    # be recorded once, duplicates sorted out then, without attribution); spool full: 503,
    # nothing acknowledged.
    recorded = await state.recorder.record_many(recordings, now)
    new: set[int] = set()
    spooled: set[int] = set()
    touches: dict[int, list[Touch]] = {}  # of every identifier of the event
    if recorded is None:
        spooled = {item.index for item in parsed}
    else:
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
            status="spooled"
            if item.index in spooled
            else "accepted"
            if item.index in new
            else "duplicate",
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
    duplicates = len(parsed) - len(new) - len(spooled)
    request.state.metrics.server_events(len(new), duplicates, len(rejected), len(spooled))
    return {
        "accepted": len(new),
        "duplicates": duplicates,
        "rejected": len(rejected),
        "spooled": len(spooled),
        "results": results,
    }


__all__ = ["EventBatch", "router"]
