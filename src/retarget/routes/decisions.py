"""``POST /v1/decisions``: the hot path. Validate, decide (one Redis round trip), render."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from retarget.api_keys import Principal, Role
from retarget.asgi import JSON, HotRequest, HotResponse
from retarget.catalog import Catalog
from retarget.decider import Outcome
from retarget.decisions import DECISION_REQUEST, DecisionRequest, NoFill
from retarget.errors import Forbidden, NotFound, invalid_input
from retarget.publishers import Publisher
from retarget.routes.deps import bearer_principal

router = APIRouter(tags=["decisions"])

NO_FILL_HEADER = "X-Retarget-No-Fill"


def publisher_for(catalog: Catalog, principal: Principal, publisher_id: str | None) -> Publisher:
    """A publisher key decides for its own publisher; the admin names one (?publisher_id=)."""
    if principal.role is Role.PUBLISHER:
        publisher_id = principal.owner_id
    elif principal.role is not Role.ADMIN:
        raise Forbidden("decisions need a publisher key", field="Authorization")
    publisher = catalog.publishers.get(publisher_id or "")
    if publisher is None:
        raise NotFound(f"no publisher {publisher_id}", field="publisher_id")
    return publisher


def parse_request(body: bytes) -> DecisionRequest:
    try:
        return DECISION_REQUEST.validate_json(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def base_url(request: HotRequest | Request) -> str:
    """Where tracking URLs point: the configured public URL, else this request's origin."""
    configured = request.state.settings.public_url
    if configured:
        return configured
    scope = request.scope
    host = (
        request.header(b"host") if isinstance(request, HotRequest) else request.headers.get("host")
    ) or "{}:{}".format(*scope["server"])
    return f"{scope['scheme']}://{host}{scope.get('root_path', '')}"


_NO_FILL_HEADERS = {
    reason: [(NO_FILL_HEADER.lower().encode(), reason.value.encode())] for reason in NoFill
}


def render_json(outcome: Outcome) -> HotResponse:
    body: dict[str, object] = {
        "decisions": {pid: ad.as_json() if ad else None for pid, ad in outcome.ads.items()}
    }
    if outcome.explain is not None:
        body["explain"] = outcome.explain
    headers = _NO_FILL_HEADERS[outcome.no_fill] if outcome.no_fill else None
    return HotResponse(orjson.dumps(body), JSON, headers=headers)


@router.post(
    "/v1/decisions",
    summary="Ask for ads for up to 10 placements (publisher key)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/DecisionRequest"}}
            },
        },
        "parameters": [
            {"name": "explain", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}},
            {"name": "publisher_id", "in": "query", "schema": {"type": "string"}},
        ],
    },
    responses={
        200: {
            "description": "Per placement an ad or null; X-Retarget-No-Fill says why none.",
            "content": {"application/json": {}},
        },
        401: {"description": "Missing or unknown key"},
        403: {"description": "Not a publisher key"},
        422: {"description": "Malformed request, naming the field"},
    },
)
async def decide(request: Request) -> Response:
    """One Redis round trip; a Redis failure or the deadline gives a 200 with no ads."""
    return (await serve_decision(HotRequest.of(request))).starlette()


async def serve_decision(request: HotRequest) -> HotResponse:
    """The hot path (see hot_paths): validate, decide (one round trip), render."""
    state = request.state
    catalog: Catalog = state.catalog.current
    principal = bearer_principal(request)
    query = request.query if request.scope["query_string"] else {}
    publisher = publisher_for(catalog, principal, query.get("publisher_id"))
    decision_request = parse_request(await request.body())
    explain = query.get("explain") == "1"
    outcome = await state.decider.decide(
        catalog, publisher, decision_request, base_url(request), explain, request.received
    )
    return render_json(outcome)
