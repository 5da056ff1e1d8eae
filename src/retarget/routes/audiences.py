"""Admin API: an advertiser's audiences."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ValidationError

from retarget.audiences import Audience, AudienceRule, AudienceUpdate, new_audience
from retarget.catalog import Catalog
from retarget.errors import NotFound, invalid_input
from retarget.routes.advertisers import find_advertiser
from retarget.routes.deps import Caller, FreshCatalog, LiveCatalogDep
from retarget.store import keys


def _own_advertiser(advertiser_id: str, caller: Caller) -> None:
    caller.require_advertiser(advertiser_id)


router = APIRouter(
    prefix="/v1/advertisers/{advertiser_id}/audiences",
    tags=["audiences"],
    dependencies=[Depends(_own_advertiser)],
)


class AudienceList(BaseModel):
    audiences: list[Audience]


def find_audience(catalog: Catalog, advertiser_id: str, audience_id: str) -> Audience:
    find_advertiser(catalog, advertiser_id)
    audience = catalog.audiences.get(audience_id)
    if audience is None or audience.advertiser_id != advertiser_id:
        raise NotFound(f"no audience {audience_id} for {advertiser_id}", field="audience_id")
    return audience


@router.post("", status_code=201, response_model=Audience)
async def create_audience(
    advertiser_id: str,
    body: AudienceRule,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
) -> Audience:
    """Define who joins: every later event of the advertiser is checked against this rule."""
    find_advertiser(catalog, advertiser_id)
    audience = new_audience(advertiser_id, body)
    await live.change(put={keys.AUDIENCES: {audience.id: audience.model_dump_json()}})
    return audience


@router.get("", response_model=AudienceList)
async def list_audiences(advertiser_id: str, catalog: FreshCatalog) -> dict[str, object]:
    find_advertiser(catalog, advertiser_id)
    return {"audiences": list(catalog.audiences_of(advertiser_id))}


@router.get("/{audience_id}", response_model=Audience)
async def get_audience(advertiser_id: str, audience_id: str, catalog: FreshCatalog) -> Audience:
    return find_audience(catalog, advertiser_id, audience_id)


@router.patch("/{audience_id}", response_model=Audience)
async def update_audience(
    advertiser_id: str,
    audience_id: str,
    body: AudienceUpdate,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
) -> Audience:
    """Change a rule. Existing memberships keep their dates; the new delay applies at once."""
    audience = find_audience(catalog, advertiser_id, audience_id)
    merged = audience.model_dump() | body.model_dump(exclude_unset=True, exclude_none=True)
    try:
        updated = Audience.model_validate(merged)
    except ValidationError as exc:
        raise invalid_input(exc) from None
    await live.change(
        put={keys.AUDIENCES: {updated.id: updated.model_dump_json()}}, based_on=catalog.version
    )
    return updated


@router.delete("/{audience_id}", status_code=204)
async def delete_audience(
    advertiser_id: str,
    audience_id: str,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
) -> Response:
    """Delete the rule. Stored memberships of it are ignored and expire with their users."""
    find_audience(catalog, advertiser_id, audience_id)
    await live.change(delete={keys.AUDIENCES: [audience_id]})
    return Response(status_code=204)
