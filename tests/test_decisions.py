"""Ad decisions, the pure part: slots, static and time-dependent targeting, and rendering."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from retarget.budgets import DAY, Spend
from retarget.campaigns import Budget, Campaign, Pacing
from retarget.catalog import ServingCampaign
from retarget.creatives import Banner, Format, Native, Video
from retarget.decisions import (
    Candidate,
    DecisionRequest,
    Moments,
    PlacementIn,
    Rejection,
    Slot,
    blocked_now,
    context_candidates,
    context_rejection,
    creatives_for,
    moment_rejection,
    pick_creative,
    plan,
    rendered_fields,
    resolve_slots,
)
from retarget.errors import InvalidInput
from retarget.publishers import Placement, Publisher, SiteCategory

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
FEED = Slot("feed-top", Format.BANNER, (300, 250))
SIDEBAR = Slot("sidebar", Format.NATIVE, None)
LEADERBOARD = Slot("leaderboard", Format.BANNER, (728, 90))
PURCHASE = {"ts": 1, "sku": "B-1", "product": "Dune", "category": "books"}


def banner(creative_id: str = "cr_a", **fields: Any) -> Banner:
    return Banner(
        id=creative_id,
        width=fields.pop("width", 300),
        height=fields.pop("height", 250),
        image_url="https://books.example.com/a.png",
        alt_text=fields.pop("alt_text", "Still thinking about {product|our new arrivals}?"),
        landing_url="https://books.example.com/",
        **fields,
    )


def native(creative_id: str = "cr_n") -> Native:
    return Native(
        id=creative_id,
        title="More {category|books} for you",
        body="Readers who bought {product|a book} came back.",
        image_url="https://books.example.com/n.png",
        call_to_action="Get {product}",
        landing_url="https://books.example.com/new",
    )


def video() -> Video:
    return Video(
        id="cr_v",
        media_url="https://books.example.com/v.mp4",
        duration_seconds=15,
        width=640,
        height=360,
        landing_url="https://books.example.com/trailer",
    )


def serving(campaign_id: str = "cmp_a", **fields: Any) -> ServingCampaign:
    campaign = Campaign(
        id=campaign_id,
        advertiser_id="adv_1",
        created_at=datetime(2027, 1, 1, tzinfo=UTC),
        name="Bring back book buyers",
        audience_ids=fields.pop("audience_ids", ["aud_1"]),
        bid_cpm=fields.pop("bid_cpm", 2.5),
        creatives=fields.pop("creatives", [banner()]),
        **fields,
    )
    return ServingCampaign.compile(campaign, {"aud_1": 0})


def publisher() -> Publisher:
    return Publisher(
        id="pub_1",
        created_at=datetime(2027, 1, 1, tzinfo=UTC),
        name="Friends",
        domain="friends.example.net",
        site_category=SiteCategory.SOCIAL,
        placements=[
            Placement(id="feed-top", format=Format.BANNER, sizes=[(300, 250), (320, 50)]),
            Placement(id="sidebar", format=Format.NATIVE),
        ],
    )


# ---- resolve_slots -----------------------------------------------------------------------


def test_a_placement_resolves_to_its_configured_format_and_first_size() -> None:
    slots = resolve_slots(publisher(), [PlacementIn(id="feed-top")])

    assert slots == [Slot("feed-top", Format.BANNER, (300, 250))]


def test_a_requested_size_of_the_placement_is_kept() -> None:
    slots = resolve_slots(publisher(), [PlacementIn(id="feed-top", width=320, height=50)])

    assert slots == [Slot("feed-top", Format.BANNER, (320, 50))]


def test_a_placement_without_sizes_resolves_to_no_size() -> None:
    slots = resolve_slots(publisher(), [PlacementIn(id="sidebar", format=Format.NATIVE)])

    assert slots == [Slot("sidebar", Format.NATIVE, None)]


def test_slots_keep_the_order_of_the_request() -> None:
    slots = resolve_slots(publisher(), [PlacementIn(id="sidebar"), PlacementIn(id="feed-top")])

    assert [slot.id for slot in slots] == ["sidebar", "feed-top"]


def test_an_unknown_placement_is_refused_naming_its_position() -> None:
    with pytest.raises(InvalidInput) as refused:
        resolve_slots(publisher(), [PlacementIn(id="feed-top"), PlacementIn(id="popup")])

    assert refused.value.field == "placements.1.id"


def test_a_placement_asked_for_in_another_format_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        resolve_slots(publisher(), [PlacementIn(id="feed-top", format=Format.VIDEO)])

    assert refused.value.field == "placements.0.format"


def test_a_size_the_placement_does_not_have_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        resolve_slots(publisher(), [PlacementIn(id="feed-top", width=728, height=90)])

    assert refused.value.field == "placements.0.width"


def test_a_request_naming_one_placement_twice_is_invalid() -> None:
    with pytest.raises(ValidationError, match="unique"):
        DecisionRequest(placements=[PlacementIn(id="feed-top"), PlacementIn(id="feed-top")])


# ---- context_rejection -------------------------------------------------------------------


def test_a_campaign_with_no_static_targeting_fits_a_slot_of_its_format_and_size() -> None:
    assert context_rejection(serving(), "pub_1", SiteCategory.SOCIAL, FEED) is None


def test_a_campaign_is_rejected_outside_its_site_categories() -> None:
    news_only = serving(site_categories=[SiteCategory.NEWS])

    assert (
        context_rejection(news_only, "pub_1", SiteCategory.SOCIAL, FEED) is Rejection.SITE_CATEGORY
    )


def test_a_campaign_is_rejected_on_a_denied_publisher() -> None:
    denied = serving(publisher_deny=["pub_1"])

    assert context_rejection(denied, "pub_1", SiteCategory.SOCIAL, FEED) is Rejection.PUBLISHER


def test_a_campaign_with_an_allow_list_is_rejected_on_other_publishers() -> None:
    allow_list = serving(publisher_allow=["pub_2"])

    assert context_rejection(allow_list, "pub_1", SiteCategory.SOCIAL, FEED) is Rejection.PUBLISHER


def test_a_campaign_without_a_creative_of_the_slots_format_is_rejected() -> None:
    assert context_rejection(serving(), "pub_1", SiteCategory.SOCIAL, SIDEBAR) is Rejection.FORMAT


def test_a_campaign_whose_formats_exclude_the_slots_is_rejected() -> None:
    banners_only = serving(formats=[Format.BANNER], creatives=[banner()])

    assert context_rejection(banners_only, "pub_1", SiteCategory.SOCIAL, SIDEBAR) is (
        Rejection.FORMAT
    )


def test_a_campaign_without_a_banner_of_the_slots_size_is_rejected() -> None:
    assert context_rejection(serving(), "pub_1", SiteCategory.SOCIAL, LEADERBOARD) is (
        Rejection.SIZE
    )


def test_a_campaign_limited_to_other_sizes_is_rejected() -> None:
    small_only = serving(
        sizes=[(320, 50)], creatives=[banner(), banner("cr_b", width=320, height=50)]
    )

    assert context_rejection(small_only, "pub_1", SiteCategory.SOCIAL, FEED) is Rejection.SIZE


def test_context_candidates_mark_the_slots_each_campaign_fits() -> None:
    both = serving("cmp_both", creatives=[banner(), native()])
    banners = serving("cmp_banners")

    found = context_candidates((both, banners), "pub_1", SiteCategory.SOCIAL, [FEED, SIDEBAR])

    assert found == [Candidate(both, 0b11), Candidate(banners, 0b01)]


def test_context_candidates_leave_out_and_explain_campaigns_that_fit_no_slot() -> None:
    rejected: dict[str, Rejection] = {}
    news_only = serving("cmp_news", site_categories=[SiteCategory.NEWS])

    found = context_candidates((news_only,), "pub_1", SiteCategory.SOCIAL, [FEED], rejected)

    assert found == []
    assert rejected == {"cmp_news": Rejection.SITE_CATEGORY}


# ---- moment_rejection, plan and blocked_now ------------------------------------------------


def test_a_campaign_in_flight_with_budget_left_may_serve_now() -> None:
    assert moment_rejection(serving(), NOW, Spend()) is None


def test_a_campaign_is_out_of_flight_before_its_start() -> None:
    starts_later = serving(start=datetime.fromtimestamp(NOW + 1, UTC))

    assert moment_rejection(starts_later, NOW, Spend()) is Rejection.OUT_OF_FLIGHT


def test_a_campaign_is_in_flight_from_its_start() -> None:
    starts_now = serving(start=datetime.fromtimestamp(NOW, UTC))

    assert moment_rejection(starts_now, NOW, Spend()) is None


def test_a_campaign_is_out_of_flight_from_its_end() -> None:
    ended = serving(end=datetime.fromtimestamp(NOW, UTC))

    assert moment_rejection(ended, NOW, Spend()) is Rejection.OUT_OF_FLIGHT


def test_a_campaign_with_its_budget_spent_is_rejected_for_budget() -> None:
    spent = serving(budget=Budget(total_impressions=10))

    assert moment_rejection(spent, NOW, Spend(total=10, today=3)) is Rejection.BUDGET


def test_a_campaign_ahead_of_even_pacing_is_rejected_for_pacing() -> None:
    # 08:00 UTC: a third of the day, so a third of 30 (plus one) may have served.
    paced = serving(budget=Budget(daily_impressions=30, pacing=Pacing.EVEN))

    assert moment_rejection(paced, NOW, Spend(total=11, today=11)) is Rejection.PACING


def test_a_plan_keeps_the_candidates_in_rank_order() -> None:
    first, second = Candidate(serving("cmp_1"), 0b01), Candidate(serving("cmp_2"), 0b11)

    assert plan([first, second]).candidates == (first, second)


def test_a_plan_checks_per_request_only_campaigns_with_a_flight_or_a_budget() -> None:
    planned = plan(
        [
            Candidate(serving("cmp_open"), 1),
            Candidate(serving("cmp_ends", end=datetime.fromtimestamp(NOW + DAY, UTC)), 1),
            Candidate(serving("cmp_budget", budget=Budget(daily_impressions=5)), 1),
        ]
    )

    assert planned.constrained == (1, 2)


def test_nothing_is_blocked_while_every_campaign_may_serve() -> None:
    planned = plan([Candidate(serving("cmp_budget", budget=Budget(total_impressions=5)), 1)])

    assert blocked_now(planned, NOW, lambda _: Spend()) == []


def test_campaigns_that_may_not_serve_now_are_blocked_and_explained() -> None:
    planned = plan(
        [
            Candidate(serving("cmp_open"), 1),
            Candidate(serving("cmp_ended", end=datetime.fromtimestamp(NOW - 1, UTC)), 1),
            Candidate(serving("cmp_spent", budget=Budget(total_impressions=1)), 1),
        ]
    )
    spend = {"cmp_spent": Spend(total=1, today=1)}
    rejected: dict[str, Rejection] = {}

    blocked = blocked_now(planned, NOW, lambda cid: spend.get(cid, Spend()), rejected)

    assert blocked == [1, 2]
    assert rejected == {"cmp_ended": Rejection.OUT_OF_FLIGHT, "cmp_spent": Rejection.BUDGET}


# ---- Moments: blocked_now, kept between requests ------------------------------------------


def test_an_impression_here_that_spends_the_budget_blocks_the_campaign_for_the_next_request() -> (
    None
):
    spending = serving("cmp_spend", budget=Budget(total_impressions=2))
    planned = plan([Candidate(spending, 1)])
    spend = {"cmp_spend": Spend(total=1, today=1)}
    moments = Moments(lambda cid: spend[cid])
    assert moments.blocked(planned, NOW) == []

    spend["cmp_spend"] = Spend(total=2, today=2)
    moments.served(spending, NOW)

    assert moments.blocked(planned, NOW) == [0]


def test_other_workers_spend_blocks_the_campaign_once_a_flush_reports_it() -> None:
    asap = Budget(daily_impressions=5, pacing=Pacing.ASAP)
    planned = plan([Candidate(serving("cmp_spend", budget=asap), 1)])
    spend = {"cmp_spend": Spend(total=4, today=4)}
    moments = Moments(lambda cid: spend[cid])
    assert moments.blocked(planned, NOW) == []

    spend["cmp_spend"] = Spend(total=9, today=9)
    moments.spend_changed({"cmp_spend"}, NOW + 1)

    assert moments.blocked(planned, NOW + 1) == [0]


def test_a_campaign_held_back_by_pacing_serves_again_as_the_day_goes_on() -> None:
    # 08:00 UTC, a third of the day: 30 * 1/3 + 1 = 11 impressions allowed so far.
    planned = plan([Candidate(serving(budget=Budget(daily_impressions=30)), 1)])
    moments = Moments(lambda _: Spend(total=11, today=11))
    assert moments.blocked(planned, NOW) == [0]

    assert moments.blocked(planned, NOW + 60) == []


def test_a_flight_opens_at_its_start_and_closes_at_its_end_with_nothing_served() -> None:
    flight = serving(
        start=datetime.fromtimestamp(NOW + 10, UTC), end=datetime.fromtimestamp(NOW + 20, UTC)
    )
    planned = plan([Candidate(flight, 1)])
    moments = Moments(lambda _: Spend())

    assert [moments.blocked(planned, NOW + t) for t in (0, 10, 19, 20)] == [[0], [], [], [0]]


def test_the_daily_budget_starts_again_at_utc_midnight() -> None:
    planned = plan([Candidate(serving(budget=Budget(daily_impressions=5)), 1)])
    day = {"today": 5}
    moments = Moments(lambda _: Spend(total=day["today"], today=day["today"]))
    assert moments.blocked(planned, NOW) == [0]

    day["today"] = 0  # the counters' new day: nothing spent yet
    midnight = NOW - NOW % DAY + DAY

    assert moments.blocked(planned, midnight - 1) == [0]
    assert moments.blocked(planned, midnight) == []


@settings(max_examples=200, deadline=None)
@given(
    budgets=st.lists(
        st.tuples(
            st.sampled_from([None, 3, 50]),  # total
            st.sampled_from([None, 2, 24]),  # daily
            st.sampled_from(list(Pacing)),
            st.sampled_from([None, -3600, 600, 7200]),  # start, from NOW
            st.sampled_from([None, 300, 5400, 2 * DAY]),  # end, from the start (or NOW)
        ),
        min_size=1,
        max_size=5,
    ),
    steps=st.lists(
        st.tuples(
            st.sampled_from(["wait", "serve", "flush"]), st.integers(0, 4), st.integers(0, 20_000)
        ),
        max_size=40,
    ),
)
def test_moments_always_agree_with_checking_every_campaign_afresh(
    budgets: list[tuple[int | None, int | None, Pacing, int | None, int | None]],
    steps: list[tuple[str, int, int]],
) -> None:
    """Whatever the order of waits, impressions here and flushes, the kept answers are the
    ones blocked_now computes from scratch."""
    campaigns = [
        serving(
            f"cmp_{n}",
            budget=Budget(total_impressions=total, daily_impressions=daily, pacing=pacing),
            start=None if start is None else datetime.fromtimestamp(NOW + start, UTC),
            end=None if end is None else datetime.fromtimestamp(NOW + (start or 0) + end, UTC),
        )
        for n, (total, daily, pacing, start, end) in enumerate(budgets)
    ]
    planned = plan([Candidate(c, 1) for c in campaigns])
    served = {c.campaign.id: 0 for c in campaigns}

    def spend_of(campaign_id: str) -> Spend:
        return Spend(total=served[campaign_id], today=served[campaign_id])

    moments = Moments(spend_of)
    now = NOW
    for action, which, amount in steps:
        target = campaigns[which % len(campaigns)]
        if action == "wait":
            now += amount
        elif action == "serve":
            served[target.campaign.id] += 1
            moments.served(target, now)
        else:
            served[target.campaign.id] += amount % 3
            moments.spend_changed({target.campaign.id}, now)
        assert moments.blocked(planned, now) == blocked_now(planned, now, spend_of)


# ---- pick_creative and rendered_fields ---------------------------------------------------


def test_creatives_rotate_with_the_users_prior_impressions_of_the_campaign() -> None:
    rotating = serving(creatives=[banner("cr_a"), banner("cr_b")])

    picked = [pick_creative(rotating, FEED, prior).id for prior in range(5)]

    assert picked == ["cr_a", "cr_b", "cr_a", "cr_b", "cr_a"]


def test_only_creatives_of_the_slots_size_are_picked() -> None:
    mixed = serving(
        creatives=[banner("cr_small", width=320, height=50), banner("cr_a"), banner("cr_b")]
    )

    picked = {pick_creative(mixed, FEED, prior).id for prior in range(6)}

    assert picked == {"cr_a", "cr_b"}


def test_a_campaign_remembers_the_creatives_of_a_bounded_number_of_slot_shapes() -> None:
    # A placement without sizes takes any size a request names: each is a new shape.
    mixed = serving(creatives=[banner("cr_small", width=320, height=50), banner("cr_a")])

    fitting = [creatives_for(mixed, Slot("any", Format.BANNER, (w, 50))) for w in range(1, 400)]

    assert [[c.id for c in found] for found in fitting if found] == [["cr_small"]]
    assert [c.id for c in creatives_for(mixed, Slot("any", Format.BANNER, (300, 250)))] == ["cr_a"]
    assert len(mixed.fitting) <= 64


def test_a_banners_alt_text_gets_the_last_purchased_product() -> None:
    fields = rendered_fields(banner(), PURCHASE)

    assert fields == {
        "width": 300,
        "height": 250,
        "image_url": "https://books.example.com/a.png",
        "alt_text": "Still thinking about Dune?",
    }


def test_a_macro_falls_back_to_its_default_without_a_last_purchase() -> None:
    assert rendered_fields(banner(), None)["alt_text"] == "Still thinking about our new arrivals?"


def test_the_product_macro_falls_back_to_the_sku_when_no_product_name_was_sent() -> None:
    fields = rendered_fields(banner(), {**PURCHASE, "product": None})

    assert fields["alt_text"] == "Still thinking about B-1?"


def test_a_macro_without_a_default_and_without_a_value_is_left_empty() -> None:
    fields = rendered_fields(native(), {"ts": 1, "category": "books"})

    assert fields["call_to_action"] == "Get "


def test_a_native_creatives_text_fields_are_all_filled() -> None:
    fields = rendered_fields(native(), PURCHASE)

    assert fields == {
        "title": "More books for you",
        "body": "Readers who bought Dune came back.",
        "image_url": "https://books.example.com/n.png",
        "call_to_action": "Get Dune",
    }


def test_product_text_is_filled_in_verbatim_not_as_markup_or_more_macros() -> None:
    fields = rendered_fields(banner(), {**PURCHASE, "product": "<b>{category}</b>"})

    assert fields["alt_text"] == "Still thinking about <b>{category}</b>?"


def test_a_video_creative_renders_its_media_fields() -> None:
    assert rendered_fields(video(), PURCHASE) == {
        "media_url": "https://books.example.com/v.mp4",
        "mime_type": "video/mp4",
        "duration_seconds": 15,
        "width": 640,
        "height": 360,
    }
