"""Campaign and creative models, and the reference check run before a campaign is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from retarget.campaigns import (
    MAX_CAP_SECONDS,
    Campaign,
    CampaignCreate,
    CampaignUpdate,
    FrequencyCap,
    Status,
    check_references,
    new_campaign,
)
from retarget.creatives import Creative, Format, creative_format
from retarget.errors import InvalidInput
from tests.helpers import banner, native, video

CREATED = datetime(2027, 1, 15, 12, tzinfo=UTC)
AUDIENCES = {"aud_a1": "adv_a", "aud_a2": "adv_a", "aud_b1": "adv_b"}
PUBLISHERS = frozenset({"pub_1", "pub_2"})

creative_adapter: TypeAdapter[Any] = TypeAdapter(Creative)


def campaign(**fields: Any) -> Campaign:
    """A valid campaign of advertiser ``adv_a``; ``fields`` override."""
    return Campaign.model_validate(
        {
            "id": "cmp_1",
            "advertiser_id": "adv_a",
            "created_at": CREATED,
            "name": "Bring back book buyers",
            "audience_ids": ["aud_a1"],
            "bid_cpm": 2.5,
            **fields,
        }
    )


def refusal(build: Any, *args: Any, **fields: Any) -> tuple[str, ...]:
    """The location of the first error ``build(*args, **fields)`` raises."""
    with pytest.raises(ValidationError) as raised:
        build(*args, **fields)
    return tuple(str(part) for part in raised.value.errors()[0]["loc"])


def reference_refusal(checked: Campaign) -> str | None:
    """The field check_references names when it refuses ``checked``."""
    with pytest.raises(InvalidInput) as raised:
        check_references(checked, AUDIENCES, PUBLISHERS)
    return raised.value.field


# check_references


def test_check_references_accepts_a_campaign_whose_references_all_exist() -> None:
    checked = campaign(
        audience_ids=["aud_a1"],
        exclude_audience_ids=["aud_a2"],
        publisher_allow=["pub_1"],
        publisher_deny=["pub_2"],
        formats=["banner", "video"],
        creatives=[banner(), video()],
    )

    check_references(checked, AUDIENCES, PUBLISHERS)


def test_check_references_refuses_an_audience_that_does_not_exist() -> None:
    checked = campaign(audience_ids=["aud_a1", "aud_gone"])

    assert reference_refusal(checked) == "audience_ids.1"


def test_check_references_refuses_another_advertisers_audience() -> None:
    checked = campaign(audience_ids=["aud_b1"])

    assert reference_refusal(checked) == "audience_ids.0"


def test_check_references_refuses_excluding_another_advertisers_audience() -> None:
    checked = campaign(exclude_audience_ids=["aud_a2", "aud_b1"])

    assert reference_refusal(checked) == "exclude_audience_ids.1"


@pytest.mark.parametrize("list_name", ["publisher_allow", "publisher_deny"])
def test_check_references_refuses_a_publisher_that_does_not_exist(list_name: str) -> None:
    checked = campaign(**{list_name: ["pub_1", "pub_gone"]})

    assert reference_refusal(checked) == f"{list_name}.1"


def test_check_references_refuses_a_creative_of_a_format_the_campaign_does_not_allow() -> None:
    checked = campaign(formats=["banner"], creatives=[banner(), video()])

    assert reference_refusal(checked) == "creatives.1.type"


def test_check_references_refuses_any_creative_when_no_format_is_allowed() -> None:
    checked = campaign(formats=[], creatives=[native()])

    assert reference_refusal(checked) == "creatives.0.type"


def test_check_references_refuses_two_creatives_with_one_id() -> None:
    checked = campaign(creatives=[banner(id="spring"), native(id="spring")])

    assert reference_refusal(checked) == "creatives"


def test_check_references_says_which_audience_is_missing() -> None:
    with pytest.raises(InvalidInput, match="aud_gone"):
        check_references(campaign(audience_ids=["aud_gone"]), AUDIENCES, PUBLISHERS)


# new_campaign


def test_a_new_campaign_gets_an_id_its_advertiser_and_a_creation_time() -> None:
    create = CampaignCreate(
        name="Books", audience_ids=["aud_a1"], bid_cpm=1.0, creatives=[banner(id="one")]
    )

    created = new_campaign(create, "adv_a", CREATED.timestamp())

    assert created.id.startswith("cmp_")
    assert created.advertiser_id == "adv_a"
    assert created.created_at == CREATED
    assert [c.id for c in created.creatives] == ["one"]
    assert created.status is Status.ACTIVE


def test_new_campaigns_get_distinct_ids() -> None:
    create = CampaignCreate(name="Books", audience_ids=["aud_a1"], bid_cpm=1.0)

    ids = {new_campaign(create, "adv_a", 0).id for _ in range(100)}

    assert len(ids) == 100


# Flight


def test_a_flight_that_ends_before_it_starts_is_refused() -> None:
    assert refusal(campaign, start="2027-02-01T00:00:00Z", end="2027-01-01T00:00:00Z") == ("end",)


def test_a_flight_that_ends_when_it_starts_is_refused() -> None:
    assert refusal(campaign, start="2027-02-01T00:00:00Z", end="2027-02-01T00:00:00Z") == ("end",)


def test_a_flight_is_ordered_by_instant_not_by_wall_clock() -> None:
    # 01:00 in UTC+1 is 00:00 UTC: the same instant.
    loc = refusal(campaign, start="2027-02-01T01:00:00+01:00", end="2027-02-01T00:00:00Z")

    assert loc == ("end",)


@pytest.mark.parametrize(
    ("start", "end"),
    [(None, None), ("2027-02-01T00:00:00Z", None), (None, "2027-02-01T00:00:00Z")],
)
def test_a_flight_may_be_open_at_either_end(start: str | None, end: str | None) -> None:
    built = campaign(start=start, end=end)

    assert (built.start is None, built.end is None) == (start is None, end is None)


def test_a_flight_time_without_a_zone_is_taken_as_utc() -> None:
    assert campaign(start="2027-02-01T00:00:00").start == datetime(2027, 2, 1, tzinfo=UTC)


def test_a_flight_time_in_another_zone_is_stored_in_utc() -> None:
    start = campaign(start=datetime(2027, 2, 1, 1, tzinfo=timezone(timedelta(hours=1)))).start

    assert start == datetime(2027, 2, 1, tzinfo=UTC)
    assert start is not None
    assert start.utcoffset() == timedelta(0)


# Frequency caps, interval, budget, price


@pytest.mark.parametrize(
    ("cap", "field"),
    [
        ({"impressions": 0, "seconds": 60}, "impressions"),
        ({"impressions": -1, "seconds": 60}, "impressions"),
        ({"impressions": 1, "seconds": 0}, "seconds"),
        ({"impressions": 1, "seconds": -60}, "seconds"),
        ({"impressions": 1, "seconds": MAX_CAP_SECONDS + 1}, "seconds"),
        ({"impressions": 1_000_001, "seconds": 60}, "impressions"),
        ({"impressions": 1}, "seconds"),
    ],
)
def test_a_frequency_cap_needs_positive_impressions_and_seconds(
    cap: dict[str, int], field: str
) -> None:
    assert refusal(FrequencyCap.model_validate, cap) == (field,)


def test_a_frequency_cap_of_one_impression_a_second_is_allowed() -> None:
    assert FrequencyCap(impressions=1, seconds=1) == FrequencyCap(impressions=1, seconds=1)


def test_a_campaign_names_the_refused_cap_by_position() -> None:
    caps = [{"impressions": 3, "seconds": 86_400}, {"impressions": 0, "seconds": 60}]

    assert refusal(campaign, frequency_caps=caps) == ("frequency_caps", "1", "impressions")


def test_a_campaign_has_at_most_ten_frequency_caps() -> None:
    caps = [{"impressions": i, "seconds": 60 * i} for i in range(1, 12)]

    assert refusal(campaign, frequency_caps=caps) == ("frequency_caps",)


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"min_interval_seconds": -1}, ("min_interval_seconds",)),
        ({"min_interval_seconds": MAX_CAP_SECONDS + 1}, ("min_interval_seconds",)),
        ({"bid_cpm": 0}, ("bid_cpm",)),
        ({"bid_cpm": -0.01}, ("bid_cpm",)),
        ({"bid_cpm": 10_000.01}, ("bid_cpm",)),
        ({"priority": -1}, ("priority",)),
        ({"priority": 101}, ("priority",)),
        ({"budget": {"total_impressions": 0}}, ("budget", "total_impressions")),
        ({"budget": {"daily_impressions": -1}}, ("budget", "daily_impressions")),
        ({"budget": {"pacing": "fast"}}, ("budget", "pacing")),
        ({"budget": {"spend": 10}}, ("budget", "spend")),
    ],
)
def test_out_of_range_numbers_are_refused(fields: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert refusal(campaign, **fields) == loc


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"min_interval_seconds": -1}, ("min_interval_seconds",)),
        ({"bid_cpm": 0}, ("bid_cpm",)),
        ({"frequency_caps": [{"impressions": 0, "seconds": 1}]}, ("frequency_caps", "0")),
        ({"name": "x" * 201}, ("name",)),
        ({"advertiser_id": "adv_b"}, ("advertiser_id",)),
        ({"creatives": []}, ("creatives",)),
    ],
)
def test_an_update_checks_each_field_it_sets(fields: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert refusal(CampaignUpdate.model_validate, fields)[: len(loc)] == loc


def test_an_empty_update_changes_nothing() -> None:
    assert CampaignUpdate().model_dump(exclude_unset=True) == {}


# Names, lists, targeting


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"name": ""}, ("name",)),
        ({"name": "x" * 201}, ("name",)),
        ({"audience_ids": []}, ("audience_ids",)),
        ({"audience_ids": [""]}, ("audience_ids", "0")),
        ({"audience_ids": ["a" * 65]}, ("audience_ids", "0")),
        ({"site_categories": ["casino"]}, ("site_categories", "0")),
        ({"formats": ["popup"]}, ("formats", "0")),
        ({"sizes": [[0, 250]]}, ("sizes", "0", "0")),
        ({"sizes": [[300, 4097]]}, ("sizes", "0", "1")),
        ({"status": "running"}, ("status",)),
        ({"owner": "me"}, ("owner",)),
    ],
)
def test_invalid_campaign_fields_are_refused(fields: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert refusal(campaign, **fields) == loc


def test_a_name_of_200_characters_is_allowed() -> None:
    assert len(campaign(name="x" * 200).name) == 200


def test_a_campaign_allows_every_format_unless_told_otherwise() -> None:
    assert campaign().formats == [Format.BANNER, Format.NATIVE, Format.VIDEO]


def test_a_campaign_has_at_most_fifty_creatives() -> None:
    creatives = [banner(id=f"cr_{i}") for i in range(51)]

    assert refusal(campaign, creatives=creatives) == ("creatives",)


# Creatives


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "/relative",
        "relative/path",
        "//books.example.com/no-scheme",
        "ftp://x",
        "file:///etc/passwd",
        "https:///no-host",
        "https://",
        " javascript:alert(1)",
        " https://books.example.com/leading-space",
        "https://books.example.com/a b",
        "https://books.example.com/\nSet-Cookie: x=1",
        "https://books.example.com/\tx",
        "https://books.example.com/\x00",
        "https://books.example.com/" + "x" * 2048,
    ],
)
@pytest.mark.parametrize(
    ("build", "field"),
    [
        (banner, "landing_url"),
        (banner, "image_url"),
        (native, "image_url"),
        (video, "media_url"),
    ],
    ids=["banner-landing", "banner-image", "native-image", "video-media"],
)
def test_a_creative_url_must_be_absolute_http_or_https(build: Any, field: str, url: str) -> None:
    creative = build(**{field: url})

    assert refusal(creative_adapter.validate_python, creative) == (creative["type"], field)


@pytest.mark.parametrize(
    "url",
    [
        "http://books.example.com",
        "https://books.example.com/ads/1.png?size=300x250&v=2#top",
        "HTTPS://Books.Example.com/",
        "https://127.0.0.1:8443/x",
    ],
)
def test_an_absolute_http_or_https_url_is_accepted(url: str) -> None:
    assert creative_adapter.validate_python(banner(landing_url=url)).landing_url == url


@pytest.mark.parametrize(
    ("creative", "loc"),
    [
        (banner(alt_text="x" * 201), ("banner", "alt_text")),
        (banner(alt_text=""), ("banner", "alt_text")),
        (banner(name="x" * 201), ("banner", "name")),
        (native(title="x" * 101), ("native", "title")),
        (native(body="x" * 301), ("native", "body")),
        (native(call_to_action="x" * 41), ("native", "call_to_action")),
        (banner(alt_text="Only {price} today"), ("banner", "alt_text")),
        (native(title="{product"), ("native", "title")),
        (native(body="{sku|a book}"), ("native", "body")),
        (native(call_to_action="Buy {price}"), ("native", "call_to_action")),
        (banner(width=0), ("banner", "width")),
        (banner(height=4097), ("banner", "height")),
        (video(duration_seconds=0), ("video", "duration_seconds")),
        (video(duration_seconds=601), ("video", "duration_seconds")),
        (video(mime_type="text/html"), ("video", "mime_type")),
        (banner(id="../x"), ("banner", "id")),
        (banner(id=""), ("banner", "id")),
        (banner(html="<script>"), ("banner", "html")),
        ({**banner(), "type": "popup"}, ()),
    ],
)
def test_invalid_creative_fields_are_refused(
    creative: dict[str, Any], loc: tuple[str, ...]
) -> None:
    assert refusal(creative_adapter.validate_python, creative) == loc


def test_texts_of_the_longest_allowed_lengths_are_accepted() -> None:
    accepted = creative_adapter.validate_python(
        native(title="x" * 100, body="x" * 300, call_to_action="x" * 40)
    )

    assert (len(accepted.title), len(accepted.body), len(accepted.call_to_action)) == (100, 300, 40)


def test_creative_texts_keep_their_macros_unfilled() -> None:
    accepted = creative_adapter.validate_python(banner(alt_text="About {product|our books}?"))

    assert accepted.alt_text == "About {product|our books}?"


def test_a_creative_without_an_id_gets_one() -> None:
    first = creative_adapter.validate_python(banner())
    second = creative_adapter.validate_python(banner())

    assert first.id.startswith("cr_")
    assert first.id != second.id


@pytest.mark.parametrize(
    ("creative", "format_"),
    [(banner(), Format.BANNER), (native(), Format.NATIVE), (video(), Format.VIDEO)],
)
def test_a_creatives_format_is_its_type(creative: dict[str, Any], format_: Format) -> None:
    assert creative_format(creative_adapter.validate_python(creative)) is format_
