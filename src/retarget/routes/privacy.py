"""Opt-out for browsers, export and erasure of a user for the admin."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from retarget import privacy, users
from retarget.attribution import Touch
from retarget.audiences import eligible_from
from retarget.routes.deps import Admin, FreshCatalog, UsersDep

router = APIRouter(tags=["privacy"])

_OPTED_OUT_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Opted out</title></head>
<body><h1>You have opted out</h1>
<p>This browser will not be added to retargeting audiences, and what we stored about it
has been erased. Clearing your cookies undoes the opt-out.</p></body></html>
"""


@router.get("/optout", response_class=Response, responses={200: {"content": {"text/html": {}}}})
async def opt_out(request: Request, store: UsersDep) -> Response:
    """Set a long-lived opt-out cookie and erase what this browser's ``rt_uid`` holds."""
    uid = users.cookie_id_or_none(request.cookies.get(users.COOKIE_NAME))
    if uid is not None:
        await store.erase(users.UserRef(users.Namespace.COOKIE, uid))
    response = Response(_OPTED_OUT_PAGE, media_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    settings = request.state.settings
    response.set_cookie(
        privacy.OPT_OUT_COOKIE,
        "1",
        max_age=privacy.OPT_OUT_MAX_AGE,
        domain=settings.cookie_domain,
        secure=True,
        httponly=True,
        samesite="none",
    )
    response.delete_cookie(
        users.COOKIE_NAME,
        domain=settings.cookie_domain,
        secure=True,
        httponly=True,
        samesite="none",
    )
    return response


class MembershipOut(BaseModel):
    audience_id: str
    advertiser_id: str | None
    audience_name: str | None
    since: int
    eligible_from: int | None
    expires_at: int
    active: bool


class TouchOut(BaseModel):
    ts: int
    campaign_id: str
    creative_id: str
    publisher_id: str
    site_category: str


class UserExport(BaseModel):
    namespace: users.Namespace
    id: str
    memberships: list[MembershipOut]
    last_purchases: dict[str, dict[str, object]]
    last_clicks: dict[str, TouchOut] = Field(
        description="Per advertiser, the user's last click on its ads (for attribution)."
    )
    last_views: dict[str, TouchOut] = Field(
        description="Per advertiser, the user's last view of its ads (for attribution)."
    )
    seen_event_ids: list[tuple[str, int]]
    ttl_seconds: int | None


@router.get("/v1/users/{namespace}/{user_id}", response_model=UserExport, dependencies=[Admin])
async def export_user(
    namespace: str, user_id: str, request: Request, store: UsersDep, catalog: FreshCatalog
) -> UserExport:
    """Everything stored about a user (access request). Times are unix seconds."""
    user = users.parse_user(namespace, user_id)
    stored = await store.load(user)
    now = request.state.clock.now()
    memberships = []
    for m in stored.memberships:
        audience = catalog.audiences.get(m.audience_id)
        memberships.append(
            MembershipOut(
                audience_id=m.audience_id,
                advertiser_id=audience.advertiser_id if audience else None,
                audience_name=audience.name if audience else None,
                since=m.since,
                eligible_from=eligible_from(audience, m) if audience else None,
                expires_at=m.expires,
                active=m.expires > now,
            )
        )
    return UserExport(
        namespace=user.namespace,
        id=user.id,
        memberships=memberships,
        last_purchases=stored.last_purchases,
        last_clicks={a: _touch(t) for a, t in stored.last_clicks.items()},
        last_views={a: _touch(t) for a, t in stored.last_views.items()},
        seen_event_ids=stored.seen_event_ids,
        ttl_seconds=stored.ttl_seconds,
    )


def _touch(touch: Touch) -> TouchOut:
    return TouchOut(
        ts=touch.ts,
        campaign_id=touch.campaign_id,
        creative_id=touch.creative_id,
        publisher_id=touch.publisher_id,
        site_category=touch.site_category,
    )


@router.delete("/v1/users/{namespace}/{user_id}", status_code=204, dependencies=[Admin])
async def erase_user(namespace: str, user_id: str, store: UsersDep) -> Response:
    """Erase every key of a user (erasure request). Idempotent."""
    await store.erase(users.parse_user(namespace, user_id))
    return Response(status_code=204)
