"""``POST /v1/decisions``: a publisher asks for ads for a user; buyers get their shop's ads."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from retarget.clock import FrozenClock
from retarget.settings import Settings
from retarget.users import new_cookie_id
from tests.helpers import (
    ADMIN,
    Shop,
    banner,
    command_names,
    commands_sent,
    create_advertiser,
    create_advertiser_key,
    create_audience,
    create_campaign,
    decide,
    open_shop,
    purchase,
    serving,
    tcf_consent,
)

DAY = 86_400
NO_FILL = "x-retarget-no-fill"
AD_FIELDS = {
    "decision_id",
    "advertiser_id",
    "campaign_id",
    "creative_id",
    "type",
    "fields",
    "impression_url",
    "click_url",
    "ttl_seconds",
}


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> Shop:
    return await open_shop(client)


async def campaign_for(client: httpx.AsyncClient, shop: Shop, **fields: Any) -> dict[str, Any]:
    """A campaign of the shop for its book buyers; ``fields`` override or add."""
    return await create_campaign(client, shop.advertiser_id, [shop.audience_id], **fields)


def ad_in(response: httpx.Response, placement: str = "feed-top") -> dict[str, Any] | None:
    assert response.status_code == 200, response.text
    return response.json()["decisions"][placement]


def campaign_shown(response: httpx.Response, placement: str = "feed-top") -> str | None:
    """The id of the campaign whose ad fills ``placement``, or None."""
    ad = ad_in(response, placement)
    return ad["campaign_id"] if ad else None


def creative_shown(response: httpx.Response) -> str | None:
    ad = ad_in(response)
    return ad["creative_id"] if ad else None


def why_not(response: httpx.Response, campaign: dict[str, Any], placement: str = "feed-top") -> str:
    """The explain reason of ``campaign`` for ``placement``."""
    return response.json()["explain"][placement][campaign["id"]]


# ---- who gets an ad ----------------------------------------------------------------------


async def test_a_buyer_gets_the_advertisers_creative_with_the_product_filled_in(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id, pn="Dune", cat="books")

    response = await decide(client, shop.api_key, uid)

    ad = ad_in(response)
    assert ad is not None
    assert ad["advertiser_id"] == shop.advertiser_id
    assert ad["campaign_id"] == campaign["id"]
    assert ad["creative_id"] == campaign["creatives"][0]["id"]
    assert ad["fields"]["alt_text"] == "Still thinking about Dune?"
    assert NO_FILL not in response.headers


async def test_an_ad_carries_what_a_publisher_needs_to_show_and_track_it(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    ad = ad_in(await decide(client, shop.api_key, uid))

    assert ad is not None
    assert set(ad) == AD_FIELDS
    assert ad["type"] == "banner"
    assert ad["fields"]["width"] == 300
    assert ad["fields"]["height"] == 250
    assert ad["fields"]["image_url"] == banner()["image_url"]
    assert ad["impression_url"].startswith("https://testserver/t/imp/")
    assert ad["click_url"].startswith("https://testserver/t/click/")
    assert ad["ttl_seconds"] == 300


async def test_every_ad_has_its_own_decision_id(client: httpx.AsyncClient, shop: Shop) -> None:
    await campaign_for(client, shop, repeat_in_request=True)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("feed-top", "feed-bottom"))

    top, bottom = ad_in(response, "feed-top"), ad_in(response, "feed-bottom")
    assert top is not None
    assert bottom is not None
    assert top["decision_id"] != bottom["decision_id"]


async def test_every_requested_placement_gets_an_answer(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("sidebar", "feed-top", "leaderboard"))

    assert response.status_code == 200
    decisions = response.json()["decisions"]
    assert list(decisions) == ["sidebar", "feed-top", "leaderboard"]
    assert decisions["feed-top"] is not None
    assert decisions["sidebar"] is None
    assert decisions["leaderboard"] is None


async def test_a_user_who_never_bought_gets_no_ad(client: httpx.AsyncClient, shop: Shop) -> None:
    await campaign_for(client, shop)

    response = await decide(client, shop.api_key, new_cookie_id())

    assert ad_in(response) is None
    assert response.headers[NO_FILL] == "not_eligible"


async def test_explain_says_a_user_who_never_bought_is_not_in_the_audience(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop)

    response = await decide(client, shop.api_key, new_cookie_id(), explain=True)

    assert why_not(response, campaign) == "not_in_audience"


async def test_a_request_without_a_user_id_gets_nulls_not_an_error(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)

    response = await decide(client, shop.api_key, None, ("feed-top", "sidebar"))

    assert response.status_code == 200
    assert response.json() == {"decisions": {"feed-top": None, "sidebar": None}}
    assert response.headers[NO_FILL] == "no_user"


async def test_a_malformed_user_id_is_an_unknown_user_not_an_error(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)

    response = await decide(client, shop.api_key, "../../etc/passwd")

    assert ad_in(response) is None
    assert response.headers[NO_FILL] == "no_user"


async def test_a_buyer_of_another_shop_gets_no_ad_from_this_one(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    garden = await create_advertiser(client, "Garden Shop", "garden.example.com")
    await create_audience(client, garden["id"], name="gardeners")
    uid = await purchase(client, garden["pixel_id"], pn="Rake", cat="tools")

    response = await decide(client, shop.api_key, uid)

    assert ad_in(response) is None


# ---- frequency, interval, delay, exclusion -----------------------------------------------


async def test_after_the_frequency_cap_is_reached_the_next_decision_is_null(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop, frequency_caps=[{"impressions": 2, "seconds": DAY}])
    uid = await purchase(client, shop.pixel_id)
    served = [ad_in(await decide(client, shop.api_key, uid)) for _ in range(2)]

    response = await decide(client, shop.api_key, uid, explain=True)

    assert all(served)
    assert ad_in(response) is None
    assert why_not(response, campaign) == "frequency_capped"
    assert response.headers[NO_FILL] == "not_eligible"


async def test_a_frequency_cap_window_slides_so_ads_return_after_it(
    client: httpx.AsyncClient, shop: Shop, clock: FrozenClock
) -> None:
    await campaign_for(client, shop, frequency_caps=[{"impressions": 1, "seconds": DAY}])
    uid = await purchase(client, shop.pixel_id)
    assert ad_in(await decide(client, shop.api_key, uid)) is not None

    clock.advance(DAY)
    response = await decide(client, shop.api_key, uid)

    assert ad_in(response) is not None


async def test_over_nine_days_of_visits_ads_fill_exactly_when_every_cap_and_the_interval_allow(
    client: httpx.AsyncClient, shop: Shop, clock: FrozenClock
) -> None:
    """Against the rules written out plainly: a cap of n per s seconds is full when n of the
    user's impressions of the campaign are less than s seconds old."""
    caps = [(2, 3600), (6, DAY), (20, 7 * DAY)]
    await campaign_for(
        client,
        shop,
        frequency_caps=[{"impressions": n, "seconds": s} for n, s in caps],
        min_interval_seconds=300,
    )
    uid = await purchase(client, shop.pixel_id)
    rng = random.Random(1)
    shown: list[float] = []
    held_by = set()
    for _ in range(80):
        clock.advance(rng.choice([60, 299, 300, 900, 3600, 4 * 3600, 9 * 3600]))
        now = clock.now()
        holds = {s for n, s in caps if sum(t > now - s for t in shown) >= n}
        if shown and now - shown[-1] < 300:
            holds.add("min_interval")
        filled = ad_in(await decide(client, shop.api_key, uid)) is not None
        assert filled == (not holds), (now, shown)
        if filled:
            shown.append(now)
        held_by |= holds
    # The walk met every rule, and each cap's window slid past its oldest impressions.
    assert held_by == {"min_interval", 3600, DAY, 7 * DAY}
    assert clock.now() - shown[0] > 7 * DAY


async def test_a_second_ad_waits_for_min_interval_seconds(
    client: httpx.AsyncClient, shop: Shop, clock: FrozenClock
) -> None:
    campaign = await campaign_for(client, shop, min_interval_seconds=3600)
    uid = await purchase(client, shop.pixel_id)
    assert ad_in(await decide(client, shop.api_key, uid)) is not None

    clock.advance(3599)
    response = await decide(client, shop.api_key, uid, explain=True)

    assert ad_in(response) is None
    assert why_not(response, campaign) == "min_interval"


async def test_an_ad_is_allowed_again_once_min_interval_seconds_have_passed(
    client: httpx.AsyncClient, shop: Shop, clock: FrozenClock
) -> None:
    await campaign_for(client, shop, min_interval_seconds=3600)
    uid = await purchase(client, shop.pixel_id)
    assert ad_in(await decide(client, shop.api_key, uid)) is not None

    clock.advance(3600)
    response = await decide(client, shop.api_key, uid)

    assert ad_in(response) is not None


async def test_among_forty_audiences_each_buyer_gets_the_campaign_of_their_own(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaigns = []
    for n in range(40):
        audience = await create_audience(
            client, shop.advertiser_id, name=f"a{n}", categories=[f"cat{n}"]
        )
        campaign = await create_campaign(client, shop.advertiser_id, [audience["id"]])
        campaigns.append(campaign["id"])
    stranger = await purchase(client, shop.pixel_id, cat="garden")

    shown = [
        campaign_shown(
            await decide(client, shop.api_key, await purchase(client, shop.pixel_id, cat=f"cat{n}"))
        )
        for n in range(40)
    ]

    assert shown == campaigns
    assert ad_in(await decide(client, shop.api_key, stranger)) is None


async def test_a_buyer_gets_no_ad_within_the_audiences_delay_days(
    client: httpx.AsyncClient, shop: Shop, clock: FrozenClock
) -> None:
    refill = await create_audience(client, shop.advertiser_id, name="refill", delay_days=3)
    campaign = await create_campaign(client, shop.advertiser_id, [refill["id"]])
    uid = await purchase(client, shop.pixel_id)

    clock.advance(3 * DAY - 1)
    response = await decide(client, shop.api_key, uid, explain=True)

    assert ad_in(response) is None
    assert why_not(response, campaign) == "in_delay_window"


async def test_a_buyer_gets_an_ad_once_the_audiences_delay_days_have_passed(
    client: httpx.AsyncClient, shop: Shop, clock: FrozenClock
) -> None:
    refill = await create_audience(client, shop.advertiser_id, name="refill", delay_days=3)
    await create_campaign(client, shop.advertiser_id, [refill["id"]])
    uid = await purchase(client, shop.pixel_id)

    clock.advance(3 * DAY)
    response = await decide(client, shop.api_key, uid)

    assert ad_in(response) is not None


async def test_a_buyer_in_an_excluded_audience_gets_no_ad(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    big = await create_audience(client, shop.advertiser_id, name="big spenders", min_value=100)
    campaign = await campaign_for(client, shop, exclude_audience_ids=[big["id"]])
    uid = await purchase(client, shop.pixel_id, val="150")

    response = await decide(client, shop.api_key, uid, explain=True)

    assert ad_in(response) is None
    assert why_not(response, campaign) == "excluded_audience"


# ---- which campaign wins -----------------------------------------------------------------


async def test_a_higher_priority_wins_over_a_higher_bid(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    important = await campaign_for(client, shop, name="important", priority=2, bid_cpm=1.0)
    await campaign_for(client, shop, name="rich", priority=1, bid_cpm=9.0)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid)

    assert campaign_shown(response) == important["id"]


async def test_within_a_priority_the_higher_bid_wins(client: httpx.AsyncClient, shop: Shop) -> None:
    await campaign_for(client, shop, name="cheap", bid_cpm=1.0)
    rich = await campaign_for(client, shop, name="rich", bid_cpm=3.0)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid)

    assert campaign_shown(response) == rich["id"]


async def test_explain_says_a_campaign_that_lost_on_rank_was_outranked(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop, name="rich", bid_cpm=3.0)
    cheap = await campaign_for(client, shop, name="cheap", bid_cpm=1.0)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, explain=True)

    assert why_not(response, cheap) == "outranked"


async def test_explain_leaves_the_winner_out(client: httpx.AsyncClient, shop: Shop) -> None:
    campaign = await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, explain=True)

    assert response.json()["explain"] == {"feed-top": {}}
    assert campaign_shown(response) == campaign["id"]


async def test_without_explain_the_answer_has_no_explain(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)

    response = await decide(client, shop.api_key, new_cookie_id())

    assert "explain" not in response.json()


async def test_one_request_never_shows_the_same_campaign_twice(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("feed-top", "feed-bottom"), explain=True)

    assert campaign_shown(response, "feed-top") == campaign["id"]
    assert ad_in(response, "feed-bottom") is None
    assert why_not(response, campaign, "feed-bottom") == "already_in_request"


async def test_a_campaign_with_repeat_in_request_may_fill_several_placements(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop, repeat_in_request=True)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("feed-top", "feed-bottom"))

    assert campaign_shown(response, "feed-top") == campaign["id"]
    assert campaign_shown(response, "feed-bottom") == campaign["id"]


async def test_a_second_placement_goes_to_the_next_campaign(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    first = await campaign_for(client, shop, name="first", bid_cpm=3.0)
    second = await campaign_for(client, shop, name="second", bid_cpm=1.0)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("feed-top", "feed-bottom"))

    assert campaign_shown(response, "feed-top") == first["id"]
    assert campaign_shown(response, "feed-bottom") == second["id"]


async def test_a_campaigns_creatives_rotate_across_decisions(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(
        client, shop, creatives=[banner(name="first"), banner(name="second")]
    )
    uid = await purchase(client, shop.pixel_id)

    shown = [creative_shown(await decide(client, shop.api_key, uid)) for _ in range(3)]

    first, second = (c["id"] for c in campaign["creatives"])
    assert shown == [first, second, first]


async def test_creatives_keep_rotating_for_a_user_who_sees_a_campaign_often(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(
        client, shop, creatives=[banner(name="first"), banner(name="second")]
    )
    uid = await purchase(client, shop.pixel_id)

    shown = [creative_shown(await decide(client, shop.api_key, uid)) for _ in range(20)]

    first, second = (c["id"] for c in campaign["creatives"])
    assert shown == [first, second] * 10


# ---- context and moment rules ------------------------------------------------------------


async def test_a_campaign_is_not_shown_outside_its_site_categories(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop, site_categories=["news"])
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, explain=True)

    assert ad_in(response) is None
    assert why_not(response, campaign) == "site_category"


async def test_a_request_may_name_the_site_category_of_its_page(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop, site_categories=["news"])
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, site={"category": "news"})

    assert ad_in(response) is not None


async def test_a_campaign_is_not_shown_on_a_publisher_it_denies(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop, publisher_deny=[shop.publisher_id])
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, explain=True)

    assert ad_in(response) is None
    assert why_not(response, campaign) == "publisher"


async def test_a_campaign_without_a_creative_of_the_placements_format_is_not_shown(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("sidebar",), explain=True)

    assert ad_in(response, "sidebar") is None
    assert why_not(response, campaign, "sidebar") == "format"


async def test_a_campaign_without_a_banner_of_the_placements_size_is_not_shown(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("leaderboard",), explain=True)

    assert ad_in(response, "leaderboard") is None
    assert why_not(response, campaign, "leaderboard") == "size"


async def test_a_placement_no_campaign_fits_is_a_no_candidate_no_fill(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("leaderboard",))

    assert ad_in(response, "leaderboard") is None
    assert response.headers[NO_FILL] == "no_candidate"


async def test_asking_for_explain_does_not_change_the_no_fill_reason(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, ("leaderboard",), explain=True)

    assert response.headers[NO_FILL] == "no_candidate"


@pytest.mark.parametrize(
    "flight",
    [{"end": "2027-01-10T00:00:00Z"}, {"start": "2027-02-01T00:00:00Z"}],
    ids=["ended", "not-started"],
)
async def test_a_campaign_out_of_its_flight_is_not_shown(
    client: httpx.AsyncClient, shop: Shop, flight: dict[str, str]
) -> None:
    campaign = await campaign_for(client, shop, **flight)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, explain=True)

    assert ad_in(response) is None
    assert why_not(response, campaign) == "out_of_flight"


async def test_a_campaign_whose_budget_is_spent_is_not_shown(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    campaign = await campaign_for(client, shop, budget={"total_impressions": 1})
    uid = await purchase(client, shop.pixel_id)
    assert ad_in(await decide(client, shop.api_key, uid)) is not None

    response = await decide(client, shop.api_key, uid, explain=True)

    assert ad_in(response) is None
    assert why_not(response, campaign) == "budget"


async def test_a_budget_spent_through_one_worker_stops_the_campaign_on_another(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    """Two workers (apps on one Redis): each reads back the spend of every campaign with a
    budget when it flushes its counters."""
    quick = settings.model_copy(
        update={"counters_flush_seconds": 0.05, "catalog_refresh_seconds": 0.05}
    )
    async with serving(quick, clock) as one, serving(quick, clock) as other:
        shop = await open_shop(one)
        budgeted = await campaign_for(one, shop, budget={"total_impressions": 2})
        buyers = [await purchase(one, shop.pixel_id) for _ in range(3)]
        served = [ad_in(await decide(one, shop.api_key, uid)) for uid in buyers[:2]]
        await asyncio.sleep(0.5)  # both refresh their catalogs and flush, several times

        response = await decide(other, shop.api_key, buyers[2], explain=True)

    assert all(served)
    assert ad_in(response) is None
    assert why_not(response, budgeted) == "budget"


async def test_a_campaign_ahead_of_its_even_pacing_is_held_back(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    # At 08:00 UTC a third of the day is gone: a third of 3 impressions, plus one, may serve.
    campaign = await campaign_for(client, shop, budget={"daily_impressions": 3, "pacing": "even"})
    uid = await purchase(client, shop.pixel_id)
    served = [ad_in(await decide(client, shop.api_key, uid)) for _ in range(2)]

    response = await decide(client, shop.api_key, uid, explain=True)

    assert all(served)
    assert ad_in(response) is None
    assert why_not(response, campaign) == "pacing"


# ---- consent -----------------------------------------------------------------------------


async def test_a_request_with_global_privacy_control_gets_no_ad(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, consent={"gpc": True})

    assert ad_in(response) is None
    assert response.headers[NO_FILL] == "no_consent"


async def test_a_request_under_gdpr_without_a_tcf_string_gets_no_ad(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(client, shop.api_key, uid, consent={"gdpr": 1})

    assert ad_in(response) is None
    assert response.headers[NO_FILL] == "no_consent"


async def test_a_request_under_gdpr_without_consent_to_purpose_4_gets_no_ad(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(
        client, shop.api_key, uid, consent={"gdpr": 1, "tcf": tcf_consent(1, 2, 3)}
    )

    assert ad_in(response) is None
    assert response.headers[NO_FILL] == "no_consent"


async def test_a_request_under_gdpr_with_consent_to_purposes_1_3_4_gets_an_ad(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await decide(
        client, shop.api_key, uid, consent={"gdpr": 1, "tcf": tcf_consent(1, 3, 4)}
    )

    assert ad_in(response) is not None


# ---- who may ask, and what ---------------------------------------------------------------


async def test_an_advertiser_key_may_not_ask_for_decisions(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    advertiser_key = await create_advertiser_key(client, shop.advertiser_id)

    response = await decide(client, advertiser_key, new_cookie_id())

    assert response.status_code == 403
    assert response.json()["error"]["field"] == "Authorization"


async def test_a_request_without_a_key_is_unauthorized(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    response = await client.post("/v1/decisions", json={"placements": [{"id": "feed-top"}]})

    assert response.status_code == 401


async def test_a_request_with_an_unknown_key_is_unauthorized(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    response = await decide(client, "rt_pub_not-a-real-key", new_cookie_id())

    assert response.status_code == 401


async def test_a_deleted_publishers_key_stops_getting_decisions_at_once(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    uid = await purchase(client, shop.pixel_id)
    assert (await decide(client, shop.api_key, uid)).status_code == 200  # the key just worked

    deleted = await client.delete(f"/v1/publishers/{shop.publisher_id}", headers=ADMIN)
    response = await decide(client, shop.api_key, uid)

    assert deleted.status_code == 204
    assert response.status_code == 401
    assert response.json()["error"]["field"] == "Authorization"


async def test_a_decision_body_over_the_limit_is_refused_by_its_length(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    response = await client.post(
        "/v1/decisions",
        content=b" " * (64 * 1024 + 1),
        headers={"Authorization": f"Bearer {shop.api_key}", "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["field"] == "body"


async def test_a_streamed_decision_body_is_refused_once_it_passes_the_limit(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    async def chunks() -> Any:
        for _ in range(5):
            yield b" " * (16 * 1024)  # no Content-Length: 80 KiB sent in chunks

    response = await client.post(
        "/v1/decisions",
        content=chunks(),
        headers={"Authorization": f"Bearer {shop.api_key}", "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


async def test_an_unknown_placement_is_refused_naming_it(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    response = await decide(client, shop.api_key, new_cookie_id(), ("feed-top", "popup"))

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "placements.1.id"


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"placements": [{"id": "feed-top"}], "usr": {}}, "usr", "Extra inputs are not permitted"),
        ({"placements": [{"id": "feed-top", "w": 1}]}, "placements.0.w", "not permitted"),
        ({"placements": [{"id": "feed-top"}, {"id": "feed-top"}]}, "placements", "unique"),
        ({"placements": [{"id": "feed-top", "width": 0}]}, "placements.0.width", "greater"),
        ({"placements": [{"id": "feed-top"}], "consent": {"gdpr": 2}}, "consent.gdpr", "0 or 1"),
        ({"placements": []}, "placements", "at least 1"),
        ({"user": {"id": "x"}}, "placements", "required"),
    ],
    ids=["unknown-field", "unknown-placement-field", "repeated-id", "zero-width", "gdpr-2",
         "no-placements", "placements-missing"],
)  # fmt: skip
async def test_a_malformed_request_gets_422_naming_the_field_and_the_reason(
    client: httpx.AsyncClient, shop: Shop, body: dict[str, object], field: str, reason: str
) -> None:
    response = await client.post(
        "/v1/decisions", json=body, headers={"Authorization": f"Bearer {shop.api_key}"}
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == field
    assert reason in error["message"]


async def test_the_admin_decides_for_the_publisher_it_names(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    await campaign_for(client, shop)
    uid = await purchase(client, shop.pixel_id)

    response = await client.post(
        "/v1/decisions",
        params={"publisher_id": shop.publisher_id},
        json={"user": {"id": uid}, "placements": [{"id": "feed-top"}]},
        headers=ADMIN,
    )

    assert ad_in(response) is not None


# ---- the service around the decision -----------------------------------------------------


async def test_a_decision_costs_exactly_one_redis_round_trip(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    """Counted by the server: MONITOR lists every command a client sends; commands run by a
    script carry a "lua" source. The background catalog poll and counter flush are pushed
    out of the way by an interval of an hour."""
    quiet = settings.model_copy(
        update={"catalog_refresh_seconds": 3600, "counters_flush_seconds": 3600}
    )
    async with serving(quiet, clock) as client:
        shop = await open_shop(client)
        await campaign_for(client, shop)
        uid = await purchase(client, shop.pixel_id)
        await decide(client, shop.api_key, uid)  # the first call may load the script
        responses = []

        async def one_decision() -> None:
            responses.append(await decide(client, shop.api_key, uid))

        sent = await commands_sent(redis, one_decision)

    assert ad_in(responses[0]) is not None
    assert command_names(sent) == ["EVALSHA"]


async def test_with_advertising_disabled_nobody_gets_an_ad(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    async with serving(settings.model_copy(update={"advertising_enabled": False}), clock) as c:
        shop = await open_shop(c)
        await campaign_for(c, shop)
        uid = await purchase(c, shop.pixel_id)

        response = await decide(c, shop.api_key, uid, ("feed-top", "feed-bottom"))

    assert response.json() == {"decisions": {"feed-top": None, "feed-bottom": None}}
    assert response.headers[NO_FILL] == "disabled"
