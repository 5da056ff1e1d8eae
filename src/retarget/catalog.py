"""The in-process catalog: an immutable, compiled snapshot of the configuration.

Hot paths read only ``LiveCatalog.current`` — never Redis — for advertisers, audiences,
campaigns, publishers and API keys. A change anywhere builds a new catalog, which replaces
the old one in a single assignment, so a request sees one version from start to end.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel

from retarget.advertisers import Advertiser
from retarget.api_keys import StoredKey
from retarget.audiences import DAY, Audience
from retarget.campaigns import Campaign, Status
from retarget.clock import wait_or_stop
from retarget.creatives import Format, creative_format
from retarget.publishers import Publisher, SiteCategory, Size
from retarget.store import keys
from retarget.store.config import ConfigSnapshot

log = logging.getLogger("retarget")
T = TypeVar("T", bound=BaseModel)


def _empty() -> Mapping:
    return MappingProxyType({})


def _script_spec(campaign: Campaign, delay_days: Mapping[str, int]) -> str:
    """The campaign's user-dependent rules as store/decide.lua reads them (see its header).
    Numbers are hexadecimal: Lua parses those with strtoul, decimals with strtod, twice."""
    caps = campaign.frequency_caps
    # History kept per user: what the caps and the interval can see (and at least a day, so
    # creatives rotate), at most as many impressions as the largest cap allows.
    window = max([campaign.min_interval_seconds, DAY, *(c.seconds for c in caps)])
    most = max([16, *(c.impressions for c in caps)])
    return "\t".join(
        [
            campaign.id,
            campaign.advertiser_id,
            ",".join(f"{a}:{delay_days.get(a, 0) * DAY:x}" for a in campaign.audience_ids),
            ",".join(campaign.exclude_audience_ids),
            ",".join(f"{c.impressions:x}:{c.seconds:x}" for c in caps),
            f"{campaign.min_interval_seconds:x}",
            "1" if campaign.repeat_in_request else "0",
            f"{window:x}",
            f"{most:x}",
        ]
    )


@dataclass(frozen=True, slots=True)
class ServingCampaign:
    """A campaign that may serve, with its targeting compiled into sets for O(1) checks."""

    campaign: Campaign
    excluded_audiences: frozenset[str]
    site_categories: frozenset[SiteCategory]  # empty: all
    publisher_allow: frozenset[str]  # empty: all
    publisher_deny: frozenset[str]
    sizes: frozenset[Size]  # empty: any
    creatives_by_format: Mapping[Format, tuple]
    # The user-dependent rules, as store/decide.lua reads them (see its header).
    script_spec: str
    # The flight as Unix times (None: open), for the per-request checks.
    start_ts: float | None = None
    end_ts: float | None = None
    # (format, size) -> the creatives that fit such a slot, filled in as slots are seen.
    fitting: dict[tuple[Format, Size | None], tuple] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def compile(cls, campaign: Campaign, delay_days: Mapping[str, int]) -> ServingCampaign:
        by_format: dict[Format, list] = {}
        for creative in campaign.creatives:
            by_format.setdefault(creative_format(creative), []).append(creative)
        return cls(
            campaign=campaign,
            excluded_audiences=frozenset(campaign.exclude_audience_ids),
            site_categories=frozenset(campaign.site_categories),
            publisher_allow=frozenset(campaign.publisher_allow),
            publisher_deny=frozenset(campaign.publisher_deny),
            sizes=frozenset(tuple(s) for s in campaign.sizes),
            creatives_by_format=MappingProxyType(
                {f: tuple(c) for f, c in by_format.items() if f in campaign.formats}
            ),
            script_spec=_script_spec(campaign, delay_days),
            start_ts=campaign.start.timestamp() if campaign.start else None,
            end_ts=campaign.end.timestamp() if campaign.end else None,
        )

    @property
    def rank(self) -> tuple[int, float, str]:
        """Sort key: higher priority first, then higher bid, then id (stable)."""
        return (-self.campaign.priority, -self.campaign.bid_cpm, self.campaign.id)


@dataclass(frozen=True, slots=True)
class Catalog:
    version: int = -1  # -1: not loaded yet (Redis was unreachable at startup)
    advertisers: Mapping[str, Advertiser] = field(default_factory=_empty)
    by_pixel: Mapping[str, Advertiser] = field(default_factory=_empty)
    audiences: Mapping[str, Audience] = field(default_factory=_empty)
    audiences_by_advertiser: Mapping[str, tuple[Audience, ...]] = field(default_factory=_empty)
    campaigns: Mapping[str, Campaign] = field(default_factory=_empty)
    publishers: Mapping[str, Publisher] = field(default_factory=_empty)
    # SHA-256 of the key -> its owner
    api_keys: Mapping[str, StoredKey] = field(default_factory=_empty)
    # Every campaign that may serve, best rank first.
    ranked: tuple[ServingCampaign, ...] = ()
    # Index for decisions: audience id -> campaigns that include it and may serve.
    serving_by_audience: Mapping[str, tuple[ServingCampaign, ...]] = field(default_factory=_empty)
    # Campaigns with an impression budget, paused ones too (known already when resumed): the
    # ones whose spend by every worker each worker must know (store/counters.py reads it).
    budgeted: tuple[str, ...] = ()

    @property
    def loaded(self) -> bool:
        return self.version >= 0

    def audiences_of(self, advertiser_id: str) -> tuple[Audience, ...]:
        return self.audiences_by_advertiser.get(advertiser_id, ())

    def campaigns_of(self, advertiser_id: str) -> list[Campaign]:
        return [c for c in self.campaigns.values() if c.advertiser_id == advertiser_id]

    def key_hashes_of(self, owner_id: str) -> list[str]:
        """The stored hashes of every API key of an advertiser or publisher."""
        return [digest for digest, key in self.api_keys.items() if key.owner_id == owner_id]

    def candidates(self, audience_ids: list[str]) -> dict[str, ServingCampaign]:
        """Serving campaigns that include any of these audiences. Costs what the user's
        audiences hold, not what the catalog holds."""
        found: dict[str, ServingCampaign] = {}
        for audience_id in audience_ids:
            for serving in self.serving_by_audience.get(audience_id, ()):
                found[serving.campaign.id] = serving
        return found


class Decoder:
    """Decodes stored JSON, reusing the object decoded last time from the same bytes: a
    change to one campaign re-validates one campaign, not ten thousand."""

    def __init__(self) -> None:
        self._previous: dict[bytes, Any] = {}
        self._current: dict[bytes, Any] = {}

    def __call__(self, model: type[T], raw: bytes) -> T:
        decoded = self._previous.get(raw)
        if decoded is None or type(decoded) is not model:
            decoded = model.model_validate_json(raw)
        self._current[raw] = decoded
        return decoded

    def done(self) -> None:
        """Forget what the last build did not use."""
        self._previous, self._current = self._current, {}


def build_catalog(snapshot: ConfigSnapshot, decode: Decoder | None = None) -> Catalog:
    """Decode and index a stored snapshot."""
    decode = decode or Decoder()
    advertisers = [decode(Advertiser, j) for j in snapshot.of(keys.ADVERTISERS)]
    audiences = sorted(
        (decode(Audience, j) for j in snapshot.of(keys.AUDIENCES)), key=lambda a: a.id
    )
    campaigns = [decode(Campaign, j) for j in snapshot.of(keys.CAMPAIGNS)]
    publishers = [decode(Publisher, j) for j in snapshot.of(keys.PUBLISHERS)]
    api_keys = {
        digest: decode(StoredKey, j)
        for digest, j in snapshot.families.get(keys.API_KEYS, {}).items()
    }
    decode.done()

    by_advertiser: dict[str, list[Audience]] = {}
    for audience in audiences:
        by_advertiser.setdefault(audience.advertiser_id, []).append(audience)
    delay_days = {a.id: a.delay_days for a in audiences}
    ranked = sorted(
        (
            ServingCampaign.compile(c, delay_days)
            for c in campaigns
            if c.status is Status.ACTIVE and c.creatives
        ),
        key=lambda s: s.rank,
    )
    serving: dict[str, list[ServingCampaign]] = {}
    for compiled in ranked:
        for audience_id in compiled.campaign.audience_ids:
            serving.setdefault(audience_id, []).append(compiled)

    return Catalog(
        version=snapshot.version,
        advertisers=MappingProxyType({a.id: a for a in advertisers}),
        by_pixel=MappingProxyType({a.pixel_id: a for a in advertisers}),
        audiences=MappingProxyType({a.id: a for a in audiences}),
        audiences_by_advertiser=MappingProxyType({k: tuple(v) for k, v in by_advertiser.items()}),
        campaigns=MappingProxyType({c.id: c for c in campaigns}),
        publishers=MappingProxyType({p.id: p for p in publishers}),
        api_keys=MappingProxyType(api_keys),
        ranked=tuple(ranked),
        serving_by_audience=MappingProxyType({k: tuple(v) for k, v in serving.items()}),
        budgeted=tuple(
            c.id for c in campaigns if c.budget.total_impressions or c.budget.daily_impressions
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
        write: Callable[..., Awaitable[None]] | None = None,
        on_reload: Callable[[int], None] = lambda version: None,
    ) -> None:
        self._load = load
        self._version = version
        self._write = write
        self._on_reload = on_reload
        self.current = Catalog()
        self._lock = asyncio.Lock()
        self._decode = Decoder()

    async def reload(self) -> Catalog:
        async with self._lock:
            snapshot = await self._load()
            # A build allocates hundreds of thousands of objects that all survive; letting
            # the collector chase them doubles the build time at 10,000 campaigns.
            # In a thread, so the event loop keeps answering (between GIL switches) while a
            # large catalog is rebuilt.
            gc.disable()
            try:
                self.current = await asyncio.to_thread(build_catalog, snapshot, self._decode)
            finally:
                # Everything alive now (the modules, the app, this catalog) lives at least
                # until the next reload: out of every collection from here on. Otherwise the
                # collector's full passes, rare but each scanning every object for none to
                # free, stalled all requests for 85-105 ms (measured under load with 1,000
                # campaigns), which was most of the decisions' p99. A replaced catalog holds
                # no reference cycle, so reference counting still frees it.
                gc.freeze()
                gc.enable()
            self._on_reload(self.current.version)
            return self.current

    async def change(
        self,
        put: Mapping[str, Mapping[str, str]] | None = None,
        delete: Mapping[str, Iterable[str]] | None = None,
        based_on: int | None = None,
    ) -> Catalog:
        """Store a configuration change (see ConfigStore.write) and rebuild this worker's
        catalog at once; the other workers see it at their next poll."""
        assert self._write is not None, "a LiveCatalog built without a writer is read-only"
        await self._write(put=put, delete=delete, based_on=based_on)
        return await self.reload()

    async def refresh_if_changed(self) -> None:
        if await self._version() != self.current.version:
            await self.reload()

    async def keep_fresh(self, interval: float, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; a failed check is logged and retried next interval."""
        while not await wait_or_stop(stop, interval):
            try:
                await self.refresh_if_changed()
            except Exception:
                log.warning("catalog refresh failed; keeping version %s", self.current.version)
