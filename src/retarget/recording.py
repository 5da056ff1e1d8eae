"""From an event to what gets stored: which users, which audiences (pure)."""

from __future__ import annotations

from retarget.audiences import memberships_for
from retarget.catalog import Catalog
from retarget.events import Event
from retarget.store.users import Recording
from retarget.users import UserRef


def recordings_for(
    event: Event, users: list[UserRef], catalog: Catalog, now: float
) -> list[Recording]:
    """One recording per identifier, each joining the advertiser's matching audiences."""
    memberships = memberships_for(event, catalog.audiences_of(event.advertiser_id), now)
    return [Recording(user, event, memberships) for user in users]
