"""The decision service: one entry point, ``decide()``, from a request to ads or a no-fill.

It strings the pure steps of ``decisions`` around the one Redis round trip, under a
deadline and a concurrency limit, so a slow or dead Redis turns into a fast no-fill.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from retarget import decisions as d
from retarget import tracking
from retarget.breaker import Breaker
from retarget.catalog import Catalog, ServingCampaign
from retarget.clock import Clock
from retarget.consent import personalised_ads_allowed
from retarget.deadlines import Deadlines
from retarget.errors import InvalidInput
from retarget.metrics import Metrics
from retarget.publishers import Publisher, SiteCategory
from retarget.settings import Settings
from retarget.store.counters import Counters
from retarget.store.decisions import DecisionStore
from retarget.store.outage import is_outage
from retarget.users import UserRef, parse_user

log = logging.getLogger("retarget")


@dataclass
class Outcome:
    """Per requested placement an ad or None; why there is none; explain data if asked."""

    ads: dict[str, d.Ad | None]
    no_fill: d.NoFill | None = None
    explain: dict[str, dict[str, str]] | None = field(default=None)


class Decider:
    def __init__(
        self,
        store: DecisionStore,
        counters: Counters,
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        breaker: Breaker,
    ) -> None:
        self._store = store
        self._breaker = breaker
        self._metrics = metrics
        self._counters = counters
        self._settings = settings
        self._clock = clock
        self._secret = settings.secret_key.get_secret_value()  # type: ignore[union-attr]
        self._inflight = 0
        self._memo: dict[tuple, tuple[list[d.Slot], d.Plan, dict[str, None]]] = {}
        self._memo_version = -1
        self._moments = d.Moments(counters.spend)
        counters.on_spend_change(
            lambda campaign_ids: self._moments.spend_changed(campaign_ids, clock.now())
        )
        self._deadlines = Deadlines(settings.decision_deadline_ms / 1000)

    async def decide(
        self,
        catalog: Catalog,
        publisher: Publisher,
        request: d.DecisionRequest,
        base_url: str,
        explain: bool = False,
        received: float | None = None,
    ) -> Outcome:
        """Ads or a no-fill for the request's placements; InvalidInput for a bad placement.
        The deadline counts from ``received`` (``time.perf_counter()`` when the request was
        in), else from now: it is the whole decision's budget, not only Redis's."""
        if received is None:
            received = time.perf_counter()
        outcome = await self._decide(catalog, publisher, request, base_url, explain, received)
        self._metrics.decision(outcome.no_fill)
        return outcome

    async def _decide(
        self,
        catalog: Catalog,
        publisher: Publisher,
        request: d.DecisionRequest,
        base_url: str,
        explain: bool,
        received: float,
    ) -> Outcome:
        category = request.site.category or publisher.site_category
        slots, plan, no_ads = self._plan(catalog, publisher, category, request.placements)
        empty: dict[str, d.Ad | None] = dict(no_ads)
        if not self._settings.advertising_enabled:
            return Outcome(empty, d.NoFill.DISABLED)
        consent = request.consent
        if not personalised_ads_allowed(consent.gdpr, consent.tcf, consent.gpc):
            return Outcome(empty, d.NoFill.NO_CONSENT)
        user = _user_or_none(request.user)
        if user is None:
            return Outcome(empty, d.NoFill.NO_USER)
        if self._inflight >= self._settings.max_inflight_decisions:
            return Outcome(empty, d.NoFill.OVERLOADED)

        now = self._clock.now()
        rejected: dict[str, d.Rejection] | None = {} if explain else None
        if explain:
            blocked = d.blocked_now(plan, now, self._counters.spend, rejected)
        else:
            blocked = self._moments.blocked(plan, now)
        if len(blocked) == len(plan.candidates):
            outcome = Outcome(empty, d.NoFill.NO_CANDIDATE)
            if explain:
                outcome.explain = _explain(
                    catalog, publisher.id, category, slots, rejected or {}, [], empty
                )
            return outcome

        if not self._breaker.allow():  # Redis is failing: answer now, not at the deadline
            return Outcome(empty, d.NoFill.BREAKER_OPEN)
        # The reply is not waited for past the deadline, but it is still read (and dropped)
        # when it comes: the connection stays in step, and the call counts as in flight
        # until Redis answers or the socket timeout fails it.
        sent = time.perf_counter()
        landed = functools.partial(self._landed, sent)
        self._inflight += 1  # before: a closed pipeline tells ``landed`` within ``send``
        reply = self._store.send(user, plan, blocked, len(slots), now, explain, landed)
        if not await self._deadlines.reply_in_time(reply, sent - received):
            return Outcome(empty, d.NoFill.DEADLINE)
        try:
            result = self._store.outcome(reply.result(), len(slots))
        except (RedisError, OSError) as exc:
            log.warning("decision no-fill, redis: %s %s", type(exc).__name__, exc)
            return Outcome(empty, d.NoFill.REDIS_ERROR)

        ads = dict(empty)
        for slot, win in zip(slots, result.wins, strict=True):
            if win is not None:
                serving = plan.serving(win.campaign_id)
                ads[slot.id] = self._ad(
                    serving, slot, win, publisher, category, user, now, base_url
                )
        filled = any(ads.values())
        outcome = Outcome(ads, None if filled else d.NoFill.NOT_ELIGIBLE)
        if explain:
            outcome.explain = _explain(
                catalog, publisher.id, category, slots, rejected or {}, result.rejections, ads
            )
        return outcome

    def _landed(self, started: float, error: BaseException | None) -> None:
        self._inflight -= 1
        if not isinstance(error, asyncio.CancelledError):
            if is_outage(error):  # an error reply is still an answer: only outages count
                self._breaker.failure()
            else:
                self._breaker.success()
        self._metrics.redis_call("decide", time.perf_counter() - started, error is not None)

    def _plan(
        self,
        catalog: Catalog,
        publisher: Publisher,
        category: SiteCategory,
        placements: list[d.PlacementIn],
    ) -> tuple[list[d.Slot], d.Plan, dict[str, None]]:
        """The request's slots (InvalidInput: the client's), its plan and its answer without
        ads, memoised per catalog version: the static part is the same for every user."""
        if self._memo_version != catalog.version:
            self._memo, self._memo_version = {}, catalog.version
            # A campaign's flight or budget may have changed with the catalog.
            self._moments = d.Moments(self._counters.spend)
        key = (publisher.id, category, *[(p.id, p.format, p.width, p.height) for p in placements])
        found = self._memo.get(key)
        if found is None:
            slots = d.resolve_slots(publisher, placements)
            if len(self._memo) > 10_000:
                self._memo.clear()
            found = self._memo[key] = (
                slots,
                d.plan(d.context_candidates(catalog.ranked, publisher.id, category, slots)),
                dict.fromkeys(slot.id for slot in slots),
            )
        return found

    def _ad(
        self,
        serving: ServingCampaign,
        slot: d.Slot,
        win: object,
        publisher: Publisher,
        category: SiteCategory,
        user: UserRef,
        now: float,
        base_url: str,
    ) -> d.Ad:
        creative = d.pick_creative(serving, slot, win.prior_impressions)  # type: ignore[attr-defined]
        campaign = serving.campaign
        decision_id = tracking.new_decision_id()
        token = tracking.sign(
            self._secret,
            tracking.Claims(
                decision_id=decision_id,
                advertiser_id=campaign.advertiser_id,
                campaign_id=campaign.id,
                creative_id=creative.id,
                publisher_id=publisher.id,
                site_category=category.value,
                placement_id=slot.id,
                namespace=user.namespace.value,
                user_id=user.id,
                issued_at=int(now),
                expires_at=int(now) + self._settings.tracking_ttl_seconds,
            ),
        )
        self._counters.serve(campaign.id)
        self._moments.served(serving, now)
        self._counters.count(
            "decisions",
            campaign.advertiser_id,
            campaign.id,
            creative.id,
            publisher.id,
            category,
            at=now,
        )
        return d.Ad(
            decision_id=decision_id,
            placement_id=slot.id,
            advertiser_id=campaign.advertiser_id,
            campaign_id=campaign.id,
            creative=creative,
            fields=d.rendered_fields(creative, win.last_purchase),  # type: ignore[attr-defined]
            impression_url=f"{base_url}/t/imp/{token}",
            click_url=f"{base_url}/t/click/{token}",
            ttl_seconds=self._settings.ad_ttl_seconds,
        )


def _user_or_none(user_in: d.UserIn) -> UserRef | None:
    """A missing or malformed id is an unknown user (no ad), not an error."""
    if not user_in.id:
        return None
    try:
        return parse_user(user_in.namespace, user_in.id)
    except InvalidInput:
        return None


def _explain(
    catalog: Catalog,
    publisher_id: str,
    category: SiteCategory,
    slots: list[d.Slot],
    moment: dict[str, str],
    in_redis: list[tuple[str, str]],
    ads: dict[str, d.Ad | None],
) -> dict[str, dict[str, str]]:
    """Per placement: campaign id -> why it did not win there (winners are left out)."""
    user_reasons = dict(in_redis)
    report: dict[str, dict[str, str]] = {}
    for slot in slots:
        ad = ads.get(slot.id)
        reasons: dict[str, str] = {}
        for serving in catalog.ranked:
            campaign_id = serving.campaign.id
            if ad is not None and ad.campaign_id == campaign_id:
                continue
            why = d.context_rejection(serving, publisher_id, category, slot)
            reasons[campaign_id] = (
                why.value
                if why
                else moment.get(campaign_id)
                or user_reasons.get(campaign_id)
                or d.Rejection.OUTRANKED
            )
        report[slot.id] = reasons
    return report
