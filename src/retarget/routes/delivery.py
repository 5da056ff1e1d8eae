"""Browser and video delivery: ``GET /v1/ad`` (the document of an ad iframe), ``GET /v1/ad.js``
(the tag that makes such an iframe) and ``GET /v1/vast`` (VAST 4.2 for video players).

These endpoints take no key, by design: a publisher pastes the tag into public pages, so
any secret in it would be public. The publisher id in the URL only says whose placement
asks, as in Kevel's or Google Ad Manager's ad tags; what protects the counts is the signed
tracking token, not the tag. The user is the browser's ``rt_uid`` cookie, used only when it
sends neither Global Privacy Control (``Sec-GPC: 1``) nor our opt-out cookie. Every bad
query parameter is a JSON error that never echoes more than a validated id.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from retarget import bots, privacy, render, users
from retarget.catalog import Catalog
from retarget.creatives import Format
from retarget.decisions import Ad, ConsentIn, DecisionRequest, NoFill, PlacementIn, UserIn
from retarget.errors import InvalidInput, NotFound, Unavailable
from retarget.publishers import Placement, Publisher
from retarget.routes.decisions import NO_FILL_HEADER, base_url

router = APIRouter(tags=["delivery"])

_ID = r"^[A-Za-z0-9_.-]{1,64}$"
PublisherId = Annotated[
    str, Query(min_length=1, max_length=64, pattern=_ID, description="The publisher's id.")
]
PlacementId = Annotated[
    str, Query(min_length=1, max_length=64, pattern=_ID, description="One of its placements.")
]
Gdpr = Annotated[
    Literal["0", "1"] | None, Query(description="1: the user is under GDPR (TCF macro).")
]
GdprConsent = Annotated[
    str | None,
    Query(max_length=4096, pattern=r"^[A-Za-z0-9_.-]+$", description="TCF v2 consent string."),
]
Container = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Id of the element to fill; default: right after the script element.",
    ),
]

_BROWSER = (Format.BANNER, Format.NATIVE)
_NOT_SHARED = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _placement(
    catalog: Catalog, publisher_id: str, placement_id: str, formats: tuple[Format, ...]
) -> tuple[Publisher, Placement]:
    if not catalog.loaded:
        raise Unavailable("configuration not loaded yet, retry")
    publisher = catalog.publishers.get(publisher_id)
    if publisher is None:
        raise NotFound(f"no publisher {publisher_id}", field="pub")
    placement = publisher.placement(placement_id)
    if placement is None:
        raise NotFound(f"no placement {placement_id} for this publisher", field="placement")
    if placement.format not in formats:
        where = "/v1/vast" if placement.format is Format.VIDEO else "/v1/ad"
        raise InvalidInput(
            f"placement {placement_id} is {placement.format}: ask {where}", field="placement"
        )
    return publisher, placement


async def _decide(
    request: Request,
    catalog: Catalog,
    publisher: Publisher,
    placement: Placement,
    gdpr: str | None,
    gdpr_consent: str | None,
) -> tuple[Ad | None, NoFill | None]:
    """One placement, for the browser's cookie user unless it asked not to be tracked or is a
    known bot (whose visit must not use up the user's frequency caps)."""
    cookies = request.cookies
    tracked = privacy.may_track(request.headers.get("sec-gpc"), cookies.get(privacy.OPT_OUT_COOKIE))
    tracked = tracked and not bots.is_bot(request.headers.get("user-agent"))  # caps count users
    uid = users.cookie_id_or_none(cookies.get(users.COOKIE_NAME)) if tracked else None
    decision_request = DecisionRequest(
        user=UserIn(id=uid, namespace=users.Namespace.COOKIE),
        placements=[PlacementIn(id=placement.id)],
        consent=ConsentIn(
            gdpr=int(gdpr) if gdpr is not None else None,  # type: ignore[arg-type]
            tcf=gdpr_consent,
            gpc=not tracked,
        ),
    )
    outcome = await request.state.decider.decide(
        catalog, publisher, decision_request, base_url(request)
    )
    return outcome.ads.get(placement.id), outcome.no_fill


def _no_fill(no_fill: NoFill | None) -> dict[str, str]:
    return {NO_FILL_HEADER: no_fill.value} if no_fill else {}


@router.get(
    "/v1/ad",
    summary="The HTML document of an ad iframe (no key: the tag is public)",
    response_class=Response,
    responses={
        200: {
            "description": "An ad, or an empty document; X-Retarget-No-Fill says why none.",
            "content": {"text/html": {}},
        },
        404: {"description": "Unknown publisher or placement"},
        422: {"description": "Malformed parameter, or a video placement"},
    },
)
async def ad_document(
    request: Request,
    pub: PublisherId,
    placement: PlacementId,
    gdpr: Gdpr = None,
    gdpr_consent: GdprConsent = None,
) -> Response:
    catalog: Catalog = request.state.catalog.current
    publisher, slot = _placement(catalog, pub, placement, _BROWSER)
    ad, no_fill = await _decide(request, catalog, publisher, slot, gdpr, gdpr_consent)
    headers = {
        "Content-Security-Policy": render.CONTENT_SECURITY_POLICY,
        **_NOT_SHARED,
        **_no_fill(no_fill),
    }
    return Response(render.ad_html(ad), media_type="text/html", headers=headers)


@router.get(
    "/v1/ad.js",
    summary="The ad tag: a script that fills an element with the placement's ad iframe",
    response_class=Response,
    responses={
        200: {"content": {"application/javascript": {}}},
        404: {"description": "Unknown publisher or placement"},
        422: {"description": "Malformed parameter, or a video placement"},
    },
)
async def ad_tag(
    request: Request,
    pub: PublisherId,
    placement: PlacementId,
    container: Container = None,
    gdpr: Gdpr = None,
    gdpr_consent: GdprConsent = None,
) -> Response:
    """Decides nothing and reads no cookie: the same script for every visitor."""
    _, slot = _placement(request.state.catalog.current, pub, placement, _BROWSER)
    consent = {"gdpr": gdpr, "gdpr_consent": gdpr_consent}
    src = render.ad_document_url(
        base_url(request), pub, slot.id, **{k: v for k, v in consent.items() if v is not None}
    )
    size = tuple(slot.sizes[0]) if slot.sizes else None
    return Response(
        render.ad_js(src, size, container),  # type: ignore[arg-type]
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/v1/vast",
    summary="VAST 4.2 for a video placement; an empty VAST document when there is no ad",
    response_class=Response,
    responses={
        200: {
            "description": "An InLine ad, or none; X-Retarget-No-Fill says why none.",
            "content": {"application/xml": {}},
        },
        404: {"description": "Unknown publisher or placement"},
        422: {"description": "Malformed parameter, or not a video placement"},
    },
)
async def vast(
    request: Request,
    pub: PublisherId,
    placement: PlacementId,
    gdpr: Gdpr = None,
    gdpr_consent: GdprConsent = None,
) -> Response:
    catalog: Catalog = request.state.catalog.current
    publisher, slot = _placement(catalog, pub, placement, (Format.VIDEO,))
    ad, no_fill = await _decide(request, catalog, publisher, slot, gdpr, gdpr_consent)
    headers = {
        **_NOT_SHARED,
        **_no_fill(no_fill),
        **_cors(request.headers.get("origin"), publisher.domain),
    }
    version = request.app.version
    return Response(
        render.vast_xml(ad, ad_system_version=version),
        media_type="application/xml",
        headers=headers,
    )


def _cors(origin: str | None, domain: str) -> dict[str, str]:
    """Players fetch VAST with credentials (the cookie): only the publisher's own site, or
    a subdomain of it, may read the answer, since a personalised ad tells what a user bought."""
    headers = {"Vary": "Origin"}
    if origin is None:
        return headers
    parts = urlsplit(origin)
    host = (parts.hostname or "").lower()
    if (
        parts.scheme in ("https", "http")
        and origin == f"{parts.scheme}://{parts.netloc}"  # an origin: no path, no query
        and (host == domain or host.endswith("." + domain))
    ):
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers
