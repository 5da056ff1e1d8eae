"""Admin API: advertisers, their server-to-server secret and their pixel embed code."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from retarget.advertisers import (
    Advertiser,
    AdvertiserCreate,
    AdvertiserUpdate,
    new_advertiser,
    new_secret,
)
from retarget.catalog import Catalog
from retarget.embed import pixel_embed
from retarget.errors import NotFound
from retarget.routes.deps import (
    Admin,
    ClockDep,
    ConfigDep,
    FreshCatalog,
    LiveCatalogDep,
    SettingsDep,
)

router = APIRouter(prefix="/v1/advertisers", tags=["advertisers"], dependencies=[Admin])


class AdvertiserOut(BaseModel):
    id: str
    name: str
    domain: str
    pixel_id: str
    created_at: datetime


class AdvertiserCreated(AdvertiserOut):
    s2s_secret: str


class AdvertiserList(BaseModel):
    advertisers: list[AdvertiserOut]


class SecretOut(BaseModel):
    s2s_secret: str


class PixelCode(BaseModel):
    pixel_id: str
    pixel_url: str
    img: str
    script: str


def find_advertiser(catalog: Catalog, advertiser_id: str) -> Advertiser:
    advertiser = catalog.advertisers.get(advertiser_id)
    if advertiser is None:
        raise NotFound(f"no advertiser {advertiser_id}", field="advertiser_id")
    return advertiser


@router.post("", status_code=201, response_model=AdvertiserCreated)
async def create_advertiser(
    body: AdvertiserCreate, config: ConfigDep, live: LiveCatalogDep, clock: ClockDep
) -> Advertiser:
    """Create an advertiser. The response is the only time ``s2s_secret`` is shown."""
    advertiser = new_advertiser(body, clock.now())
    await config.save_advertiser(advertiser)
    await live.reload()
    return advertiser


@router.get("", response_model=AdvertiserList)
async def list_advertisers(catalog: FreshCatalog) -> dict[str, object]:
    return {"advertisers": sorted(catalog.advertisers.values(), key=lambda a: (a.created_at, a.id))}


@router.get("/{advertiser_id}", response_model=AdvertiserOut)
async def get_advertiser(advertiser_id: str, catalog: FreshCatalog) -> Advertiser:
    return find_advertiser(catalog, advertiser_id)


@router.patch("/{advertiser_id}", response_model=AdvertiserOut)
async def update_advertiser(
    advertiser_id: str,
    body: AdvertiserUpdate,
    catalog: FreshCatalog,
    config: ConfigDep,
    live: LiveCatalogDep,
) -> Advertiser:
    advertiser = find_advertiser(catalog, advertiser_id)
    updated = advertiser.model_copy(update=body.model_dump(exclude_unset=True, exclude_none=True))
    await config.save_advertiser(updated)
    await live.reload()
    return updated


@router.delete("/{advertiser_id}", status_code=204)
async def delete_advertiser(
    advertiser_id: str, catalog: FreshCatalog, config: ConfigDep, live: LiveCatalogDep
) -> Response:
    """Delete the advertiser and its audiences; its pixel stops recording at once."""
    advertiser = find_advertiser(catalog, advertiser_id)
    await config.delete_advertiser(advertiser, list(catalog.audiences_of(advertiser_id)))
    await live.reload()
    return Response(status_code=204)


@router.post("/{advertiser_id}/secret", response_model=SecretOut)
async def rotate_secret(
    advertiser_id: str, catalog: FreshCatalog, config: ConfigDep, live: LiveCatalogDep
) -> dict[str, str]:
    """Replace the server-to-server secret; the old one stops working at once."""
    advertiser = find_advertiser(catalog, advertiser_id)
    rotated = advertiser.model_copy(update={"s2s_secret": new_secret()})
    await config.save_advertiser(rotated)
    await live.reload()
    return {"s2s_secret": rotated.s2s_secret}


@router.get("/{advertiser_id}/pixel", response_model=PixelCode)
async def pixel_code(
    advertiser_id: str, catalog: FreshCatalog, settings: SettingsDep, request: Request
) -> dict[str, str]:
    """Embed code for the order-confirmation page: an image tag and an async script tag."""
    advertiser = find_advertiser(catalog, advertiser_id)
    base_url = settings.public_url or str(request.base_url).rstrip("/")
    return pixel_embed(base_url, advertiser.pixel_id)
