"""The compiled catalog: decoding a stored snapshot and indexing what may serve (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from retarget.advertisers import Advertiser
from retarget.api_keys import Role, StoredKey, key_hash
from retarget.audiences import Audience
from retarget.campaigns import Budget, Campaign, Status
from retarget.catalog import Catalog, ServingCampaign, build_catalog
from retarget.creatives import Banner, Format, Video
from retarget.store import keys
from retarget.store.config import ConfigSnapshot

CREATED = datetime(2027, 1, 1, tzinfo=UTC)
SHOP = Advertiser(
    id="adv_books",
    name="Book Shop",
    domain="books.example.com",
    pixel_id="px_books",
    s2s_secret="s2s_books",
    created_at=CREATED,
)
GARDEN = Advertiser(
    id="adv_garden",
    name="Garden Shop",
    domain="garden.example.com",
    pixel_id="px_garden",
    s2s_secret="s2s_garden",
    created_at=CREATED,
)
BANNER = Banner(
    id="cr_banner",
    width=300,
    height=250,
    image_url="https://books.example.com/ads/300x250.png",
    alt_text="Still thinking about {product|our new arrivals}?",
    landing_url="https://books.example.com/",
)
VIDEO = Video(
    id="cr_video",
    media_url="https://books.example.com/ads/trailer.mp4",
    duration_seconds=15,
    width=640,
    height=360,
    landing_url="https://books.example.com/trailer",
)


def audience(audience_id: str, advertiser: Advertiser = SHOP) -> Audience:
    return Audience(id=audience_id, advertiser_id=advertiser.id, name=audience_id)


def campaign(campaign_id: str, audience_ids: list[str], **fields: Any) -> Campaign:
    """An active banner campaign of the book shop; ``fields`` override."""
    values: dict[str, Any] = {
        "id": campaign_id,
        "advertiser_id": SHOP.id,
        "created_at": CREATED,
        "name": campaign_id,
        "audience_ids": audience_ids,
        "bid_cpm": 2.5,
        "creatives": [BANNER],
        **fields,
    }
    return Campaign(**values)


def snapshot(
    *models: Advertiser | Audience | Campaign, api_keys: dict[str, StoredKey] | None = None
) -> ConfigSnapshot:
    """What ConfigStore.load returns once these models are stored: family -> id -> JSON."""
    family_of = {
        Advertiser: keys.ADVERTISERS,
        Audience: keys.AUDIENCES,
        Campaign: keys.CAMPAIGNS,
    }
    families: dict[str, dict[str, bytes]] = {}
    for model in models:
        stored = families.setdefault(family_of[type(model)], {})
        stored[model.id] = model.model_dump_json().encode()
    families[keys.API_KEYS] = {
        digest: key.model_dump_json().encode() for digest, key in (api_keys or {}).items()
    }
    return ConfigSnapshot(version=7, families=families)


def serving_ids(catalog: Catalog, audience_id: str) -> list[str]:
    return [s.campaign.id for s in catalog.serving_by_audience.get(audience_id, ())]


def test_an_active_campaign_with_creatives_serves_under_its_audience() -> None:
    catalog = build_catalog(snapshot(SHOP, audience("aud_a"), campaign("cmp_1", ["aud_a"])))

    assert serving_ids(catalog, "aud_a") == ["cmp_1"]


def test_an_active_campaign_without_creatives_does_not_serve() -> None:
    empty = campaign("cmp_empty", ["aud_a"], creatives=[])

    catalog = build_catalog(snapshot(SHOP, audience("aud_a"), empty))

    assert serving_ids(catalog, "aud_a") == []
    assert "cmp_empty" in catalog.campaigns


@pytest.mark.parametrize("status", [Status.PAUSED, Status.ARCHIVED])
def test_a_paused_or_archived_campaign_is_kept_but_does_not_serve(status: Status) -> None:
    stopped = campaign("cmp_stopped", ["aud_a"], status=status)

    catalog = build_catalog(
        snapshot(SHOP, audience("aud_a"), stopped, campaign("cmp_on", ["aud_a"]))
    )

    assert serving_ids(catalog, "aud_a") == ["cmp_on"]
    assert catalog.campaigns["cmp_stopped"].status is status


def test_every_campaign_with_an_impression_budget_paused_or_not_has_its_spend_watched() -> None:
    catalog = build_catalog(
        snapshot(
            SHOP,
            audience("aud_a"),
            campaign("cmp_total", ["aud_a"], budget=Budget(total_impressions=100)),
            campaign("cmp_daily", ["aud_a"], budget=Budget(daily_impressions=10)),
            campaign(
                "cmp_paused",
                ["aud_a"],
                status=Status.PAUSED,
                budget=Budget(total_impressions=5),
            ),
            campaign("cmp_free", ["aud_a"]),
        )
    )

    assert sorted(catalog.budgeted) == ["cmp_daily", "cmp_paused", "cmp_total"]


def test_a_campaign_serves_under_each_of_its_audiences() -> None:
    catalog = build_catalog(
        snapshot(SHOP, audience("aud_a"), audience("aud_b"), campaign("cmp_1", ["aud_a", "aud_b"]))
    )

    assert serving_ids(catalog, "aud_a") == ["cmp_1"]
    assert serving_ids(catalog, "aud_b") == ["cmp_1"]
    assert catalog.serving_by_audience["aud_a"][0] is catalog.serving_by_audience["aud_b"][0]


def test_candidates_are_the_union_over_the_users_audiences_without_duplicates() -> None:
    catalog = build_catalog(
        snapshot(
            SHOP,
            audience("aud_a"),
            audience("aud_b"),
            audience("aud_c"),
            campaign("cmp_a", ["aud_a"]),
            campaign("cmp_ab", ["aud_a", "aud_b"]),
            campaign("cmp_b", ["aud_b"]),
            campaign("cmp_c", ["aud_c"]),
        )
    )

    found = catalog.candidates(["aud_a", "aud_b"])

    assert sorted(found) == ["cmp_a", "cmp_ab", "cmp_b"]
    assert all(serving.campaign.id == cid for cid, serving in found.items())


def test_candidates_of_audiences_no_campaign_targets_are_none() -> None:
    catalog = build_catalog(snapshot(SHOP, audience("aud_a"), campaign("cmp_a", ["aud_a"])))

    assert catalog.candidates(["aud_unknown", "aud_other"]) == {}
    assert catalog.candidates([]) == {}


def test_by_pixel_maps_each_pixel_id_to_its_advertiser() -> None:
    catalog = build_catalog(snapshot(SHOP, GARDEN))

    assert catalog.by_pixel["px_books"] == SHOP
    assert catalog.by_pixel["px_garden"] == GARDEN
    assert set(catalog.advertisers) == {"adv_books", "adv_garden"}


def test_audiences_are_grouped_by_their_advertiser() -> None:
    catalog = build_catalog(
        snapshot(SHOP, GARDEN, audience("aud_b"), audience("aud_a"), audience("aud_g", GARDEN))
    )

    assert [a.id for a in catalog.audiences_of(SHOP.id)] == ["aud_a", "aud_b"]
    assert [a.id for a in catalog.audiences_of(GARDEN.id)] == ["aud_g"]
    assert catalog.audiences_of("adv_unknown") == ()


def test_compiling_keeps_only_the_creatives_whose_format_the_campaign_allows() -> None:
    banners_only = campaign("cmp_1", ["aud_a"], formats=[Format.BANNER], creatives=[BANNER, VIDEO])

    compiled = ServingCampaign.compile(banners_only, {})

    assert dict(compiled.creatives_by_format) == {Format.BANNER: (BANNER,)}


def test_compiling_groups_the_allowed_creatives_by_format() -> None:
    both = campaign("cmp_1", ["aud_a"], creatives=[BANNER, VIDEO])

    compiled = ServingCampaign.compile(both, {})

    assert dict(compiled.creatives_by_format) == {Format.BANNER: (BANNER,), Format.VIDEO: (VIDEO,)}


def test_api_keys_are_decoded_under_the_hash_of_the_key() -> None:
    owner = StoredKey(role=Role.ADVERTISER, owner_id=SHOP.id, prefix="rt_adv_abc")
    digest = key_hash("rt_adv_abc-the-whole-key")

    catalog = build_catalog(snapshot(SHOP, api_keys={digest: owner}))

    assert catalog.api_keys == {digest: owner}


def test_an_empty_snapshot_gives_an_empty_catalog_that_is_loaded() -> None:
    catalog = build_catalog(ConfigSnapshot(version=0))

    assert catalog.loaded
    assert catalog.version == 0
    assert not catalog.advertisers
    assert not catalog.campaigns
    assert not catalog.serving_by_audience
    assert catalog.candidates(["aud_a"]) == {}


def test_a_catalog_never_built_from_a_snapshot_is_not_loaded() -> None:
    assert not Catalog().loaded


def test_the_catalog_carries_the_snapshot_version() -> None:
    assert build_catalog(snapshot(SHOP)).version == 7
