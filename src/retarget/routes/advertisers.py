"""Admin API: advertisers, their server-to-server secret and their pixel embed code."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from retarget.advertisers import (
    Advertiser,
    AdvertiserCreate,
    AdvertiserUpdate,
    new_advertiser,
    new_secret,
)
from retarget.api_keys import Role, StoredKey, key_hash, new_key
from retarget.catalog import Catalog
from retarget.embed import pixel_embed
from retarget.errors import Forbidden, NotFound
from retarget.routes.deps import (
    Admin,
    Caller,
    ClockDep,
    FreshCatalog,
    LiveCatalogDep,
    SettingsDep,
)
from retarget.store import keys

router = APIRouter(prefix="/v1/advertisers", tags=["advertisers"])


class AdvertiserOut(BaseModel):
    id: str
    name: str
    domain: str
    pixel_id: str
    created_at: datetime
    click_window_days: int
    view_window_days: int
    currency: str | None


class AdvertiserCreated(AdvertiserOut):
    s2s_secret: str


class AdvertiserList(BaseModel):
    advertisers: list[AdvertiserOut]


class SecretOut(BaseModel):
    s2s_secret: str


class KeyCreated(BaseModel):
    api_key: str = Field(description="Shown once; only its hash is stored.")
    role: Role
    owner_id: str


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


@router.post("", status_code=201, response_model=AdvertiserCreated, dependencies=[Admin])
async def create_advertiser(
    body: AdvertiserCreate, live: LiveCatalogDep, clock: ClockDep
) -> Advertiser:
    """Create an advertiser. The response is the only time ``s2s_secret`` is shown."""
    advertiser = new_advertiser(body, clock.now())
    await live.change(put={keys.ADVERTISERS: {advertiser.id: advertiser.model_dump_json()}})
    return advertiser


@router.get("", response_model=AdvertiserList)
async def list_advertisers(catalog: FreshCatalog, caller: Caller) -> dict[str, object]:
    """All advertisers for the admin; an advertiser key sees only its own."""
    if caller.role is Role.PUBLISHER:
        raise Forbidden("a publisher key cannot list advertisers", field="Authorization")
    visible = [
        a
        for a in catalog.advertisers.values()
        if caller.role is Role.ADMIN or (caller.role is Role.ADVERTISER and caller.owner_id == a.id)
    ]
    return {"advertisers": sorted(visible, key=lambda a: (a.created_at, a.id))}


@router.get("/{advertiser_id}", response_model=AdvertiserOut)
async def get_advertiser(advertiser_id: str, catalog: FreshCatalog, caller: Caller) -> Advertiser:
    caller.require_advertiser(advertiser_id)
    return find_advertiser(catalog, advertiser_id)


@router.patch("/{advertiser_id}", response_model=AdvertiserOut)
async def update_advertiser(
    advertiser_id: str,
    body: AdvertiserUpdate,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
    caller: Caller,
) -> Advertiser:
    caller.require_advertiser(advertiser_id)
    advertiser = find_advertiser(catalog, advertiser_id)
    updated = advertiser.model_copy(update=body.model_dump(exclude_unset=True, exclude_none=True))
    await live.change(
        put={keys.ADVERTISERS: {updated.id: updated.model_dump_json()}}, based_on=catalog.version
    )
    return updated


@router.delete("/{advertiser_id}", status_code=204, dependencies=[Admin])
async def delete_advertiser(
    advertiser_id: str, catalog: FreshCatalog, live: LiveCatalogDep
) -> Response:
    """Delete the advertiser with its audiences, campaigns and keys; its pixel stops at once."""
    find_advertiser(catalog, advertiser_id)
    await live.change(
        delete={
            keys.ADVERTISERS: [advertiser_id],
            keys.AUDIENCES: [a.id for a in catalog.audiences_of(advertiser_id)],
            keys.CAMPAIGNS: [c.id for c in catalog.campaigns_of(advertiser_id)],
            keys.API_KEYS: catalog.key_hashes_of(advertiser_id),
        }
    )
    return Response(status_code=204)


@router.post("/{advertiser_id}/secret", response_model=SecretOut)
async def rotate_secret(
    advertiser_id: str,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
    caller: Caller,
) -> dict[str, str]:
    """Replace the server-to-server secret; the old one stops working at once."""
    caller.require_advertiser(advertiser_id)
    advertiser = find_advertiser(catalog, advertiser_id)
    rotated = advertiser.model_copy(update={"s2s_secret": new_secret()})
    await live.change(put={keys.ADVERTISERS: {rotated.id: rotated.model_dump_json()}})
    return {"s2s_secret": rotated.s2s_secret}


@router.get("/{advertiser_id}/pixel", response_model=PixelCode)
async def pixel_code(
    advertiser_id: str,
    catalog: FreshCatalog,
    settings: SettingsDep,
    request: Request,
    caller: Caller,
) -> dict[str, str]:
    """Embed code for the order-confirmation page: an image tag and an async script tag."""
    caller.require_advertiser(advertiser_id)
    advertiser = find_advertiser(catalog, advertiser_id)
    base_url = settings.public_url or str(request.base_url).rstrip("/")
    return pixel_embed(base_url, advertiser.pixel_id)


@router.post(
    "/{advertiser_id}/keys", status_code=201, response_model=KeyCreated, dependencies=[Admin]
)
async def create_advertiser_key(
    advertiser_id: str, catalog: FreshCatalog, live: LiveCatalogDep
) -> KeyCreated:
    """An API key that reads and changes only this advertiser and what belongs to it."""
    find_advertiser(catalog, advertiser_id)
    return await issue_key(live, Role.ADVERTISER, advertiser_id)


def new_key_record(role: Role, owner_id: str) -> tuple[KeyCreated, dict[str, str]]:
    """A new key for the response, and what to store of it: its hash -> owner."""
    api_key = new_key(role)
    stored = StoredKey(role=role, owner_id=owner_id, prefix=api_key[:10])
    created = KeyCreated(api_key=api_key, role=role, owner_id=owner_id)
    return created, {key_hash(api_key): stored.model_dump_json()}


async def issue_key(live: LiveCatalogDep, role: Role, owner_id: str) -> KeyCreated:
    created, record = new_key_record(role, owner_id)
    await live.change(put={keys.API_KEYS: record})
    return created
