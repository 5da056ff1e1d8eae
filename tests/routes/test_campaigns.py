"""Admin API for campaigns: create, read, update, pause, delete, and every refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from retarget.clock import FrozenClock
from tests.helpers import (
    ADMIN,
    banner,
    campaign_body,
    create_advertiser,
    create_audience,
    create_campaign,
    create_publisher,
    native,
    video,
)


async def shop_with_audience(client: httpx.AsyncClient) -> tuple[str, str]:
    """An advertiser and one of its audiences: what every campaign needs."""
    shop = await create_advertiser(client)
    audience = await create_audience(client, shop["id"])
    return shop["id"], audience["id"]


async def post_campaign(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/campaigns", json=body, headers=ADMIN)


# Creating and reading


async def test_a_campaign_is_created_with_its_targeting_and_creatives(
    client: httpx.AsyncClient,
) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    publisher = await create_publisher(client)
    body = campaign_body(
        [audience_id],
        advertiser_id=shop_id,
        site_categories=["games", "video"],
        publisher_allow=[publisher["id"]],
        formats=["banner", "native"],
        sizes=[[300, 250]],
        frequency_caps=[{"impressions": 3, "seconds": 86_400}],
        min_interval_seconds=3_600,
        budget={"daily_impressions": 10_000, "pacing": "asap"},
        bid_cpm=2.5,
        priority=5,
        repeat_in_request=True,
        creatives=[banner(), native()],
    )

    response = await post_campaign(client, body)

    assert response.status_code == 201, response.text
    campaign = response.json()
    assert campaign["id"].startswith("cmp_")
    assert campaign["advertiser_id"] == shop_id
    assert campaign["status"] == "active"
    assert campaign["audience_ids"] == [audience_id]
    assert campaign["site_categories"] == ["games", "video"]
    assert campaign["publisher_allow"] == [publisher["id"]]
    assert campaign["sizes"] == [[300, 250]]
    assert campaign["frequency_caps"] == [{"impressions": 3, "seconds": 86_400}]
    assert campaign["budget"] == {
        "total_impressions": None,
        "daily_impressions": 10_000,
        "pacing": "asap",
    }
    assert (campaign["bid_cpm"], campaign["priority"]) == (2.5, 5)
    assert [c["type"] for c in campaign["creatives"]] == ["banner", "native"]
    assert all(c["id"].startswith("cr_") for c in campaign["creatives"])


async def test_a_new_campaign_gets_the_documented_defaults(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)

    campaign = await create_campaign(client, shop_id, [audience_id], creatives=[])

    assert campaign["status"] == "active"
    assert campaign["formats"] == ["banner", "native", "video"]
    assert campaign["site_categories"] == []
    assert campaign["frequency_caps"] == []
    assert campaign["min_interval_seconds"] == 0
    assert campaign["budget"]["pacing"] == "even"
    assert campaign["priority"] == 1
    assert campaign["repeat_in_request"] is False
    assert (campaign["start"], campaign["end"]) == (None, None)


async def test_a_created_campaign_can_be_read_back(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(client, shop_id, [audience_id])

    response = await client.get(f"/v1/campaigns/{created['id']}", headers=ADMIN)

    assert response.status_code == 200
    assert response.json() == created


async def test_flight_times_are_stored_in_utc(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)

    campaign = await create_campaign(
        client,
        shop_id,
        [audience_id],
        start="2027-02-01T00:00:00+01:00",
        end="2027-03-01T00:00:00",
    )

    assert campaign["start"] == "2027-01-31T23:00:00Z"
    assert campaign["end"] == "2027-03-01T00:00:00Z"


async def test_the_admin_must_name_the_advertiser_of_a_campaign(
    client: httpx.AsyncClient,
) -> None:
    _, audience_id = await shop_with_audience(client)

    response = await post_campaign(client, campaign_body([audience_id]))

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "advertiser_id"


async def test_a_campaign_needs_an_existing_advertiser(client: httpx.AsyncClient) -> None:
    _, audience_id = await shop_with_audience(client)

    response = await post_campaign(client, campaign_body([audience_id], advertiser_id="adv_nope"))

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "advertiser_id"


async def test_campaigns_are_listed_oldest_first(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    first = await create_campaign(client, shop_id, [audience_id], name="first")
    clock.advance(1)
    second = await create_campaign(client, shop_id, [audience_id], name="second")

    listed = (await client.get("/v1/campaigns", headers=ADMIN)).json()["campaigns"]

    assert [c["id"] for c in listed] == [first["id"], second["id"]]


async def test_campaigns_can_be_listed_per_advertiser(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    other = await create_advertiser(client, "Other", "other.example.com")
    other_audience = await create_audience(client, other["id"])
    mine = await create_campaign(client, shop_id, [audience_id])
    await create_campaign(client, other["id"], [other_audience["id"]])

    response = await client.get("/v1/campaigns", params={"advertiser_id": shop_id}, headers=ADMIN)

    assert [c["id"] for c in response.json()["campaigns"]] == [mine["id"]]


async def test_campaigns_can_be_listed_by_status(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    await create_campaign(client, shop_id, [audience_id], status="active")
    paused = await create_campaign(client, shop_id, [audience_id], status="paused")

    response = await client.get("/v1/campaigns", params={"status": "paused"}, headers=ADMIN)

    assert [c["id"] for c in response.json()["campaigns"]] == [paused["id"]]


async def test_listing_by_an_unknown_status_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/campaigns", params={"status": "running"}, headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "status"


async def test_an_unknown_campaign_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/campaigns/cmp_nope", headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "campaign_id"


# Updating, pausing, deleting


async def test_a_campaign_can_be_changed(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(client, shop_id, [audience_id], bid_cpm=2.5)

    response = await client.patch(
        f"/v1/campaigns/{created['id']}",
        json={"bid_cpm": 4.0, "frequency_caps": [{"impressions": 1, "seconds": 3_600}]},
        headers=ADMIN,
    )

    assert response.status_code == 200, response.text
    fetched = (await client.get(f"/v1/campaigns/{created['id']}", headers=ADMIN)).json()
    assert fetched["bid_cpm"] == 4.0
    assert fetched["frequency_caps"] == [{"impressions": 1, "seconds": 3_600}]
    assert fetched["name"] == created["name"]
    assert fetched["creatives"] == created["creatives"]


async def test_a_campaign_can_be_paused_and_resumed(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(client, shop_id, [audience_id])
    url = f"/v1/campaigns/{created['id']}"

    paused = await client.patch(url, json={"status": "paused"}, headers=ADMIN)
    paused_list = await client.get("/v1/campaigns", params={"status": "paused"}, headers=ADMIN)
    resumed = await client.patch(url, json={"status": "active"}, headers=ADMIN)

    assert paused.status_code == 200
    assert paused.json()["status"] == "paused"
    assert [c["id"] for c in paused_list.json()["campaigns"]] == [created["id"]]
    assert resumed.json()["status"] == "active"
    assert (await client.get(url, headers=ADMIN)).json()["status"] == "active"


async def test_a_campaign_can_be_archived(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(client, shop_id, [audience_id])

    response = await client.patch(
        f"/v1/campaigns/{created['id']}", json={"status": "archived"}, headers=ADMIN
    )

    assert response.status_code == 200
    assert response.json()["status"] == "archived"


async def test_an_open_ended_flight_can_be_given_an_end_and_have_it_removed(
    client: httpx.AsyncClient,
) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(client, shop_id, [audience_id])
    url = f"/v1/campaigns/{created['id']}"

    ended = await client.patch(url, json={"end": "2027-06-01T00:00:00Z"}, headers=ADMIN)
    reopened = await client.patch(url, json={"end": None}, headers=ADMIN)

    assert ended.json()["end"] == "2027-06-01T00:00:00Z"
    assert reopened.status_code == 200
    assert reopened.json()["end"] is None


async def test_a_deleted_campaign_is_gone(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(client, shop_id, [audience_id])

    deleted = await client.delete(f"/v1/campaigns/{created['id']}", headers=ADMIN)

    assert deleted.status_code == 204
    assert (await client.get(f"/v1/campaigns/{created['id']}", headers=ADMIN)).status_code == 404
    assert (await client.get("/v1/campaigns", headers=ADMIN)).json()["campaigns"] == []


async def test_deleting_an_unknown_campaign_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v1/campaigns/cmp_nope", headers=ADMIN)

    assert response.status_code == 404


async def test_deleting_an_advertiser_deletes_its_campaigns(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(client, shop_id, [audience_id])

    await client.delete(f"/v1/advertisers/{shop_id}", headers=ADMIN)

    assert (await client.get(f"/v1/campaigns/{created['id']}", headers=ADMIN)).status_code == 404


async def test_a_campaign_can_still_be_paused_after_its_allowed_publisher_is_deleted(
    client: httpx.AsyncClient,
) -> None:
    # Deleting a publisher leaves campaigns that list it in place ("matching nothing"):
    # the operator must still be able to stop them.
    shop_id, audience_id = await shop_with_audience(client)
    publisher = await create_publisher(client)
    created = await create_campaign(
        client, shop_id, [audience_id], publisher_allow=[publisher["id"]]
    )
    await client.delete(f"/v1/publishers/{publisher['id']}", headers=ADMIN)

    response = await client.patch(
        f"/v1/campaigns/{created['id']}", json={"status": "paused"}, headers=ADMIN
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paused"


async def test_a_campaign_can_still_be_paused_after_one_of_its_audiences_is_deleted(
    client: httpx.AsyncClient,
) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    kept = await create_audience(client, shop_id, name="kept")
    created = await create_campaign(client, shop_id, [audience_id, kept["id"]])
    await client.delete(f"/v1/advertisers/{shop_id}/audiences/{audience_id}", headers=ADMIN)

    response = await client.patch(
        f"/v1/campaigns/{created['id']}", json={"status": "paused"}, headers=ADMIN
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paused"


# Refusals: each a 422 naming the field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param(
            {"start": "2027-02-01T00:00:00Z", "end": "2027-01-31T00:00:00Z"},
            "end",
            id="end-before-start",
        ),
        pytest.param(
            {"start": "2027-02-01T00:00:00Z", "end": "2027-02-01T00:00:00Z"},
            "end",
            id="end-equal-to-start",
        ),
        pytest.param(
            {"frequency_caps": [{"impressions": 0, "seconds": 60}]},
            "frequency_caps.0.impressions",
            id="cap-zero-impressions",
        ),
        pytest.param(
            {"frequency_caps": [{"impressions": -1, "seconds": 60}]},
            "frequency_caps.0.impressions",
            id="cap-negative-impressions",
        ),
        pytest.param(
            {
                "frequency_caps": [
                    {"impressions": 3, "seconds": 60},
                    {"impressions": 3, "seconds": 0},
                ]
            },
            "frequency_caps.1.seconds",
            id="cap-zero-seconds",
        ),
        pytest.param(
            {"frequency_caps": [{"impressions": 3, "seconds": -86_400}]},
            "frequency_caps.0.seconds",
            id="cap-negative-seconds",
        ),
        pytest.param({"min_interval_seconds": -1}, "min_interval_seconds", id="min-interval"),
        pytest.param({"bid_cpm": 0}, "bid_cpm", id="bid-zero"),
        pytest.param({"name": "x" * 201}, "name", id="name-too-long"),
        pytest.param({"audience_ids": []}, "audience_ids", id="no-audience"),
        pytest.param({"owner": "me"}, "owner", id="unknown-field"),
    ],
)
async def test_an_invalid_campaign_is_refused_naming_the_field(
    client: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    shop_id, audience_id = await shop_with_audience(client)

    response = await post_campaign(
        client, {**campaign_body([audience_id], advertiser_id=shop_id), **fields}
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["field"] == field


async def test_a_campaign_for_an_audience_that_does_not_exist_is_refused(
    client: httpx.AsyncClient,
) -> None:
    shop_id, audience_id = await shop_with_audience(client)

    response = await post_campaign(
        client, campaign_body([audience_id, "aud_nope"], advertiser_id=shop_id)
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "audience_ids.1"


async def test_a_campaign_for_another_advertisers_audience_is_refused(
    client: httpx.AsyncClient,
) -> None:
    shop_id, _ = await shop_with_audience(client)
    other = await create_advertiser(client, "Other", "other.example.com")
    theirs = await create_audience(client, other["id"])

    response = await post_campaign(client, campaign_body([theirs["id"]], advertiser_id=shop_id))

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "audience_ids.0"


async def test_excluding_another_advertisers_audience_is_refused(
    client: httpx.AsyncClient,
) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    other = await create_advertiser(client, "Other", "other.example.com")
    theirs = await create_audience(client, other["id"])

    response = await post_campaign(
        client,
        campaign_body([audience_id], advertiser_id=shop_id, exclude_audience_ids=[theirs["id"]]),
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "exclude_audience_ids.0"


@pytest.mark.parametrize("list_name", ["publisher_allow", "publisher_deny"])
async def test_a_campaign_naming_a_publisher_that_does_not_exist_is_refused(
    client: httpx.AsyncClient, list_name: str
) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    publisher = await create_publisher(client)

    response = await post_campaign(
        client,
        campaign_body(
            [audience_id], advertiser_id=shop_id, **{list_name: [publisher["id"], "pub_nope"]}
        ),
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == f"{list_name}.1"


async def test_a_creative_of_a_format_the_campaign_does_not_allow_is_refused(
    client: httpx.AsyncClient,
) -> None:
    shop_id, audience_id = await shop_with_audience(client)

    response = await post_campaign(
        client,
        campaign_body(
            [audience_id], advertiser_id=shop_id, formats=["banner"], creatives=[banner(), video()]
        ),
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "creatives.1.type"


async def test_two_creatives_with_the_same_id_are_refused(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)

    response = await post_campaign(
        client,
        campaign_body(
            [audience_id], advertiser_id=shop_id, creatives=[banner(id="one"), native(id="one")]
        ),
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "creatives"


@pytest.mark.parametrize(
    ("creative", "field"),
    [
        pytest.param(
            banner(landing_url="javascript:alert(1)"),
            "creatives.0.banner.landing_url",
            id="javascript-landing",
        ),
        pytest.param(
            banner(image_url="data:text/html,<script>alert(1)</script>"),
            "creatives.0.banner.image_url",
            id="data-image",
        ),
        pytest.param(
            native(image_url="/relative.png"), "creatives.0.native.image_url", id="relative-image"
        ),
        pytest.param(video(media_url="ftp://x"), "creatives.0.video.media_url", id="ftp-media"),
        pytest.param(
            banner(alt_text="x" * 201), "creatives.0.banner.alt_text", id="alt-text-too-long"
        ),
        pytest.param(native(title="x" * 101), "creatives.0.native.title", id="title-too-long"),
        pytest.param(
            banner(alt_text="Only {price} today"), "creatives.0.banner.alt_text", id="macro"
        ),
        pytest.param({**banner(), "type": "popup"}, "creatives.0.type", id="unknown-type"),
    ],
)
async def test_an_invalid_inline_creative_is_refused_naming_the_field(
    client: httpx.AsyncClient, creative: dict[str, Any], field: str
) -> None:
    shop_id, audience_id = await shop_with_audience(client)

    response = await post_campaign(
        client, campaign_body([audience_id], advertiser_id=shop_id, creatives=[creative])
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_a_refused_campaign_is_not_stored(client: httpx.AsyncClient) -> None:
    shop_id, _ = await shop_with_audience(client)

    await post_campaign(client, campaign_body(["aud_nope"], advertiser_id=shop_id))

    assert (await client.get("/v1/campaigns", headers=ADMIN)).json()["campaigns"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"end": "2027-01-01T00:00:00Z"}, "end", id="end-before-start"),
        pytest.param(
            {"frequency_caps": [{"impressions": 0, "seconds": 60}]},
            "frequency_caps.0.impressions",
            id="cap",
        ),
        pytest.param({"min_interval_seconds": -5}, "min_interval_seconds", id="min-interval"),
        pytest.param({"bid_cpm": 0}, "bid_cpm", id="bid-zero"),
        pytest.param({"name": "x" * 201}, "name", id="name-too-long"),
        pytest.param({"audience_ids": []}, "audience_ids", id="no-audience"),
        pytest.param({"audience_ids": ["aud_nope"]}, "audience_ids.0", id="unknown-audience"),
        pytest.param({"publisher_deny": ["pub_nope"]}, "publisher_deny.0", id="unknown-publisher"),
        pytest.param({"formats": ["video"]}, "creatives.0.type", id="format-of-a-creative"),
        pytest.param({"advertiser_id": "adv_other"}, "advertiser_id", id="move-advertiser"),
    ],
)
async def test_an_invalid_change_is_refused_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(
        client,
        shop_id,
        [audience_id],
        start="2027-02-01T00:00:00Z",
        end="2027-03-01T00:00:00Z",
    )

    response = await client.patch(f"/v1/campaigns/{created['id']}", json=changes, headers=ADMIN)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert (await client.get(f"/v1/campaigns/{created['id']}", headers=ADMIN)).json() == created


async def test_moving_the_start_past_the_end_is_refused(client: httpx.AsyncClient) -> None:
    shop_id, audience_id = await shop_with_audience(client)
    created = await create_campaign(
        client, shop_id, [audience_id], start="2027-02-01T00:00:00Z", end="2027-03-01T00:00:00Z"
    )

    response = await client.patch(
        f"/v1/campaigns/{created['id']}", json={"start": "2027-04-01T00:00:00Z"}, headers=ADMIN
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] in ("start", "end")


async def test_concurrent_edits_of_a_campaign_never_undo_each_other_silently(
    client: httpx.AsyncClient,
) -> None:
    advertiser = await create_advertiser(client)
    audience = await create_audience(client, advertiser["id"])
    campaign = await create_campaign(client, advertiser["id"], [audience["id"]])
    path = f"/v1/campaigns/{campaign['id']}"

    for round_ in range(20):
        pause, rename = await asyncio.gather(
            client.patch(path, json={"status": "paused"}, headers=ADMIN),
            client.patch(path, json={"name": f"renamed {round_}"}, headers=ADMIN),
        )
        statuses = {pause.status_code, rename.status_code}
        assert statuses <= {200, 409}
        stored = (await client.get(path, headers=ADMIN)).json()
        if pause.status_code == 200:
            assert stored["status"] == "paused", (round_, pause.json(), rename.status_code)
        if rename.status_code == 409:
            assert rename.json()["error"]["code"] == "conflict"
        await client.patch(path, json={"status": "active"}, headers=ADMIN)
