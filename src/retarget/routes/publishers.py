"""Admin API: publishers and their placements. A publisher key may read only its own."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from retarget.api_keys import Role
from retarget.catalog import Catalog
from retarget.errors import NotFound
from retarget.publishers import Publisher, PublisherFields, PublisherUpdate, new_publisher
from retarget.routes.advertisers import KeyCreated, issue_key, new_key_record
from retarget.routes.campaigns import revalidate
from retarget.routes.deps import Admin, Caller, ClockDep, FreshCatalog, LiveCatalogDep
from retarget.store import keys

router = APIRouter(prefix="/v1/publishers", tags=["publishers"])


class PublisherCreated(Publisher):
    api_key: str = Field(description="The publisher's key for decisions. Shown once.")


class PublisherList(BaseModel):
    publishers: list[Publisher]


def find_publisher(catalog: Catalog, publisher_id: str) -> Publisher:
    publisher = catalog.publishers.get(publisher_id)
    if publisher is None:
        raise NotFound(f"no publisher {publisher_id}", field="publisher_id")
    return publisher


@router.post("", status_code=201, response_model=PublisherCreated, dependencies=[Admin])
async def create_publisher(
    body: PublisherFields, live: LiveCatalogDep, clock: ClockDep
) -> PublisherCreated:
    """Create a publisher; the response carries its API key, shown this once."""
    publisher = new_publisher(body, clock.now())
    created, record = new_key_record(Role.PUBLISHER, publisher.id)
    # One change: a publisher never exists without its key.
    await live.change(
        put={keys.PUBLISHERS: {publisher.id: publisher.model_dump_json()}, keys.API_KEYS: record}
    )
    return PublisherCreated(**publisher.model_dump(), api_key=created.api_key)


@router.get("", response_model=PublisherList)
async def list_publishers(caller: Caller, catalog: FreshCatalog) -> dict[str, object]:
    """All publishers for the admin; a publisher key sees only its own."""
    visible = [
        p
        for p in catalog.publishers.values()
        if caller.role is Role.ADMIN or (caller.role is Role.PUBLISHER and caller.owner_id == p.id)
    ]
    return {"publishers": sorted(visible, key=lambda p: (p.created_at, p.id))}


@router.get("/{publisher_id}", response_model=Publisher)
async def get_publisher(publisher_id: str, caller: Caller, catalog: FreshCatalog) -> Publisher:
    caller.require_publisher(publisher_id)
    return find_publisher(catalog, publisher_id)


@router.patch("/{publisher_id}", response_model=Publisher, dependencies=[Admin])
async def update_publisher(
    publisher_id: str,
    body: PublisherUpdate,
    catalog: FreshCatalog,
    live: LiveCatalogDep,
) -> Publisher:
    publisher = find_publisher(catalog, publisher_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    updated = revalidate(Publisher, publisher.model_dump() | changes)
    await live.change(
        put={keys.PUBLISHERS: {updated.id: updated.model_dump_json()}}, based_on=catalog.version
    )
    return updated


@router.delete("/{publisher_id}", status_code=204, dependencies=[Admin])
async def delete_publisher(
    publisher_id: str, catalog: FreshCatalog, live: LiveCatalogDep
) -> Response:
    """Delete the publisher and its keys. Campaigns that list it keep the id, matching nothing."""
    find_publisher(catalog, publisher_id)
    await live.change(
        delete={
            keys.PUBLISHERS: [publisher_id],
            keys.API_KEYS: catalog.key_hashes_of(publisher_id),
        }
    )
    return Response(status_code=204)


@router.post(
    "/{publisher_id}/keys", status_code=201, response_model=KeyCreated, dependencies=[Admin]
)
async def create_publisher_key(
    publisher_id: str, catalog: FreshCatalog, live: LiveCatalogDep
) -> KeyCreated:
    """Another decision key for this publisher (shown once), e.g. to rotate keys."""
    find_publisher(catalog, publisher_id)
    return await issue_key(live, Role.PUBLISHER, publisher_id)
