"""The in-process catalog: an immutable snapshot of the configuration, swapped whole.

Hot paths read only ``LiveCatalog.current`` — never Redis — for advertisers and audiences.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from retarget.advertisers import Advertiser
from retarget.audiences import Audience
from retarget.store.config import ConfigSnapshot

log = logging.getLogger("retarget")


@dataclass(frozen=True, slots=True)
class Catalog:
    version: int = -1  # -1: not loaded yet (Redis was unreachable at startup)
    advertisers: Mapping[str, Advertiser] = field(default_factory=dict)
    by_pixel: Mapping[str, Advertiser] = field(default_factory=dict)
    audiences: Mapping[str, Audience] = field(default_factory=dict)
    audiences_by_advertiser: Mapping[str, tuple[Audience, ...]] = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        return self.version >= 0

    def audiences_of(self, advertiser_id: str) -> tuple[Audience, ...]:
        return self.audiences_by_advertiser.get(advertiser_id, ())


def build_catalog(snapshot: ConfigSnapshot) -> Catalog:
    by_advertiser: dict[str, list[Audience]] = {}
    for audience in sorted(snapshot.audiences, key=lambda a: a.id):
        by_advertiser.setdefault(audience.advertiser_id, []).append(audience)
    return Catalog(
        version=snapshot.version,
        advertisers=MappingProxyType({a.id: a for a in snapshot.advertisers}),
        by_pixel=MappingProxyType({a.pixel_id: a for a in snapshot.advertisers}),
        audiences=MappingProxyType({a.id: a for a in snapshot.audiences}),
        audiences_by_advertiser=MappingProxyType(
            {adv: tuple(auds) for adv, auds in by_advertiser.items()}
        ),
    )


class LiveCatalog:
    """Holds the current catalog; reloads it when the stored version moves.

    Each worker polls one small GET per interval instead of subscribing: it needs no
    extra connection, works the same on Redis Cluster, and a missed message cannot
    leave a worker stale.
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[ConfigSnapshot]],
        version: Callable[[], Awaitable[int]],
    ) -> None:
        self._load = load
        self._version = version
        self.current = Catalog()
        self._lock = asyncio.Lock()

    async def reload(self) -> Catalog:
        async with self._lock:
            self.current = build_catalog(await self._load())
            return self.current

    async def refresh_if_changed(self) -> None:
        if await self._version() != self.current.version:
            await self.reload()

    async def keep_fresh(self, interval: float) -> None:
        """Run until cancelled; a failed check is logged and retried next interval."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh_if_changed()
            except Exception:
                log.warning("catalog refresh failed; keeping version %s", self.current.version)
