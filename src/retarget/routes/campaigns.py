"""Admin API: campaigns and their creatives (admin, or the owning advertiser's key)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from retarget.api_keys import Principal, Role
from retarget.campaigns import (
    Campaign,
    CampaignCreate,
    CampaignUpdate,
    Status,
    check_references,
    new_campaign,
)
from retarget.catalog import Catalog
from retarget.creatives import Creative
from retarget.errors import Forbidden, InvalidInput, NotFound, invalid_input
from retarget.routes.deps import Caller, ClockDep, FreshCatalog, LiveCatalogDep
from retarget.store import keys

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
M = TypeVar("M", bound=BaseModel)

_creative = TypeAdapter(Creative)

EXAMPLE = {
    "advertiser_id": "adv_1234567890ab",
    "name": "Bring back book buyers",
    "audience_ids": ["aud_0123456789"],
    "site_categories": ["social", "games", "video"],
    "frequency_caps": [
        {"impressions": 3, "seconds": 86400},
        {"impressions": 10, "seconds": 604800},
    ],
    "min_interval_seconds": 172800,
    "budget": {"daily_impressions": 10000, "pacing": "even"},
    "bid_cpm": 2.5,
    "priority": 1,
    "creatives": [
        {
            "type": "banner",
            "width": 300,
            "height": 250,
            "image_url": "https://books.example.com/ads/300x250.png",
            "alt_text": "Still thinking about {product|our new arrivals}? Come back and buy again",
            "landing_url": "https://books.example.com/?utm_source=retarget",
        }
    ],
}


class CampaignList(BaseModel):
    campaigns: list[Campaign]


class CreativeList(BaseModel):
    creatives: list[Creative]


def find_campaign(catalog: Catalog, campaign_id: str, caller: Principal) -> Campaign:
    campaign = catalog.campaigns.get(campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign {campaign_id}", field="campaign_id")
    caller.require_advertiser(campaign.advertiser_id)
    return campaign


async def save(campaign: Campaign, catalog: Catalog, live: LiveCatalogDep) -> None:
    """Check references against the current catalog, store, and reload this worker."""
    audience_owner = {a.id: a.advertiser_id for a in catalog.audiences.values()}
    previous = catalog.campaigns.get(campaign.id)
    check_references(campaign, audience_owner, frozenset(catalog.publishers), previous)
    await live.change(
        put={keys.CAMPAIGNS: {campaign.id: campaign.model_dump_json()}}, based_on=catalog.version
    )


def revalidate(model: type[M], merged: dict[str, Any]) -> M:
    """Validate a whole object again after a partial change (e.g. ``end`` after ``start``)."""
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def with_creatives(campaign: Campaign, creatives: list[Any]) -> Campaign:
    return revalidate(Campaign, campaign.model_dump() | {"creatives": creatives})


@router.post("", status_code=201, response_model=Campaign)
async def create_campaign(
    body: Annotated[CampaignCreate, Body(openapi_examples={"banner": {"value": EXAMPLE}})],
    caller: Caller,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
    clock: ClockDep,
) -> Campaign:
    """Create a campaign, with its creatives inline."""
    if caller.role is Role.PUBLISHER:
        raise Forbidden("a publisher key cannot create campaigns", field="Authorization")
    advertiser_id = body.advertiser_id or (
        caller.owner_id if caller.role is Role.ADVERTISER else None
    )
    if advertiser_id is None:
        raise InvalidInput("required with the admin token", field="advertiser_id")
    caller.require_advertiser(advertiser_id)
    if advertiser_id not in catalog.advertisers:
        raise InvalidInput(f"no advertiser {advertiser_id}", field="advertiser_id")
    campaign = new_campaign(body, advertiser_id, clock.now())
    await save(campaign, catalog, live)
    return campaign


@router.get("", response_model=CampaignList)
async def list_campaigns(
    caller: Caller,
    catalog: FreshCatalog,
    advertiser_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Status | None = None,
) -> dict[str, object]:
    """Campaigns, oldest first; an advertiser key sees only its own."""
    if caller.role is not Role.ADMIN:
        caller.require_advertiser(advertiser_id or str(caller.owner_id))
        advertiser_id = caller.owner_id
    campaigns = [
        c
        for c in catalog.campaigns.values()
        if (advertiser_id is None or c.advertiser_id == advertiser_id)
        and (status is None or c.status == status)
    ]
    return {"campaigns": sorted(campaigns, key=lambda c: (c.created_at, c.id))}


@router.get("/{campaign_id}", response_model=Campaign)
async def get_campaign(campaign_id: str, caller: Caller, catalog: FreshCatalog) -> Campaign:
    return find_campaign(catalog, campaign_id, caller)


@router.patch("/{campaign_id}", response_model=Campaign)
async def update_campaign(
    campaign_id: str,
    body: CampaignUpdate,
    caller: Caller,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
) -> Campaign:
    """Change any field; ``{"status": "paused"}`` stops it serving in every worker within 1 s."""
    campaign = find_campaign(catalog, campaign_id, caller)
    updated = revalidate(Campaign, campaign.model_dump() | body.model_dump(exclude_unset=True))
    await save(updated, catalog, live)
    return updated


@router.delete("/{campaign_id}", status_code=204)
async def delete_campaign(
    campaign_id: str, caller: Caller, catalog: FreshCatalog, live: LiveCatalogDep
) -> Response:
    find_campaign(catalog, campaign_id, caller)
    await live.change(delete={keys.CAMPAIGNS: [campaign_id]})
    return Response(status_code=204)


@router.get("/{campaign_id}/creatives", response_model=CreativeList)
async def list_creatives(campaign_id: str, caller: Caller, catalog: FreshCatalog) -> dict:
    return {"creatives": find_campaign(catalog, campaign_id, caller).creatives}


@router.post("/{campaign_id}/creatives", status_code=201, response_model=Creative)
async def add_creative(
    campaign_id: str,
    body: Creative,
    caller: Caller,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
) -> Any:
    """Add a creative; creatives of a campaign rotate."""
    campaign = find_campaign(catalog, campaign_id, caller)
    updated = revalidate(
        Campaign, campaign.model_dump() | {"creatives": [*campaign.creatives, body]}
    )
    await save(updated, catalog, live)
    return body


@router.get("/{campaign_id}/creatives/{creative_id}", response_model=Creative)
async def get_creative(
    campaign_id: str, creative_id: str, caller: Caller, catalog: FreshCatalog
) -> Any:
    return _find_creative(find_campaign(catalog, campaign_id, caller), creative_id)


@router.put("/{campaign_id}/creatives/{creative_id}", response_model=Creative)
async def replace_creative(
    campaign_id: str,
    creative_id: str,
    body: Creative,
    caller: Caller,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
) -> Any:
    """Replace a creative's fields, keeping its id (reports stay continuous)."""
    campaign = find_campaign(catalog, campaign_id, caller)
    _find_creative(campaign, creative_id)
    replacement = body.model_copy(update={"id": creative_id})
    creatives = [replacement if c.id == creative_id else c for c in campaign.creatives]
    await save(with_creatives(campaign, creatives), catalog, live)
    return replacement


@router.delete("/{campaign_id}/creatives/{creative_id}", status_code=204)
async def delete_creative(
    campaign_id: str,
    creative_id: str,
    caller: Caller,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
) -> Response:
    campaign = find_campaign(catalog, campaign_id, caller)
    _find_creative(campaign, creative_id)
    creatives = [c for c in campaign.creatives if c.id != creative_id]
    await save(with_creatives(campaign, creatives), catalog, live)
    return Response(status_code=204)


def _find_creative(campaign: Campaign, creative_id: str) -> Any:
    for creative in campaign.creatives:
        if creative.id == creative_id:
            return creative
    raise NotFound(f"no creative {creative_id} in {campaign.id}", field="creative_id")
