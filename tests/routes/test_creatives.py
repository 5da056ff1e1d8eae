"""Admin API for a campaign's creatives: add, list, read, replace, delete, and refusals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import (
    ADMIN,
    banner,
    create_advertiser,
    create_audience,
    create_campaign,
    native,
    video,
)


async def campaign_with(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A campaign of a new advertiser with these fields (by default: one banner)."""
    shop = await create_advertiser(client)
    audience = await create_audience(client, shop["id"])
    return await create_campaign(client, shop["id"], [audience["id"]], **fields)


def creatives_url(campaign: dict[str, Any], creative_id: str | None = None) -> str:
    url = f"/v1/campaigns/{campaign['id']}/creatives"
    return f"{url}/{creative_id}" if creative_id else url


async def stored_campaign(client: httpx.AsyncClient, campaign: dict[str, Any]) -> dict[str, Any]:
    return (await client.get(f"/v1/campaigns/{campaign['id']}", headers=ADMIN)).json()


# Adding, reading, replacing, deleting


@pytest.mark.parametrize(
    "creative", [banner(), native(), video()], ids=["banner", "native", "video"]
)
async def test_a_creative_of_each_type_can_be_added(
    client: httpx.AsyncClient, creative: dict[str, Any]
) -> None:
    campaign = await campaign_with(client, creatives=[])

    response = await client.post(creatives_url(campaign), json=creative, headers=ADMIN)

    assert response.status_code == 201, response.text
    added = response.json()
    assert added["id"].startswith("cr_")
    assert {k: added[k] for k in creative} == creative
    assert (await stored_campaign(client, campaign))["creatives"] == [added]


async def test_a_native_creative_gets_a_default_call_to_action(
    client: httpx.AsyncClient,
) -> None:
    campaign = await campaign_with(client, creatives=[])

    response = await client.post(creatives_url(campaign), json=native(), headers=ADMIN)

    assert response.json()["call_to_action"] == "Shop again"


async def test_a_creative_may_bring_its_own_id(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client, creatives=[])

    response = await client.post(
        creatives_url(campaign), json=banner(id="spring-300"), headers=ADMIN
    )

    assert response.status_code == 201
    assert response.json()["id"] == "spring-300"


async def test_added_creatives_join_the_existing_ones(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client)

    added = (await client.post(creatives_url(campaign), json=native(), headers=ADMIN)).json()
    listed = await client.get(creatives_url(campaign), headers=ADMIN)

    assert listed.status_code == 200
    assert listed.json()["creatives"] == [*campaign["creatives"], added]


async def test_a_creative_can_be_read(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client)
    creative = campaign["creatives"][0]

    response = await client.get(creatives_url(campaign, creative["id"]), headers=ADMIN)

    assert response.status_code == 200
    assert response.json() == creative


async def test_an_unknown_creative_is_a_json_404(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client)

    response = await client.get(creatives_url(campaign, "cr_nope"), headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "creative_id"


async def test_creatives_of_an_unknown_campaign_are_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/campaigns/cmp_nope/creatives", headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["error"]["field"] == "campaign_id"


async def test_replacing_a_creative_keeps_its_id(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client, creatives=[banner(), native()])
    old, other = campaign["creatives"]

    response = await client.put(
        creatives_url(campaign, old["id"]),
        json=banner(id="ignored", width=728, height=90, alt_text="New in {category|books}"),
        headers=ADMIN,
    )

    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced["id"] == old["id"]
    assert (replaced["width"], replaced["height"]) == (728, 90)
    assert (await stored_campaign(client, campaign))["creatives"] == [replaced, other]


async def test_a_creative_can_be_replaced_by_one_of_another_type(
    client: httpx.AsyncClient,
) -> None:
    campaign = await campaign_with(client)
    old = campaign["creatives"][0]

    response = await client.put(creatives_url(campaign, old["id"]), json=video(), headers=ADMIN)

    assert response.status_code == 200
    stored = (await stored_campaign(client, campaign))["creatives"]
    assert [(c["id"], c["type"]) for c in stored] == [(old["id"], "video")]


async def test_replacing_an_unknown_creative_is_a_404(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client)

    response = await client.put(creatives_url(campaign, "cr_nope"), json=banner(), headers=ADMIN)

    assert response.status_code == 404
    assert (await stored_campaign(client, campaign)) == campaign


async def test_a_deleted_creative_is_gone(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client, creatives=[banner(), native()])
    gone, kept = campaign["creatives"]

    deleted = await client.delete(creatives_url(campaign, gone["id"]), headers=ADMIN)

    assert deleted.status_code == 204
    assert (await client.get(creatives_url(campaign, gone["id"]), headers=ADMIN)).status_code == 404
    assert (await stored_campaign(client, campaign))["creatives"] == [kept]


async def test_deleting_an_unknown_creative_is_a_404(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client)

    response = await client.delete(creatives_url(campaign, "cr_nope"), headers=ADMIN)

    assert response.status_code == 404


# Refusals: each a 422 naming the field


@pytest.mark.parametrize(
    ("creative", "field"),
    [
        pytest.param(
            banner(landing_url="javascript:alert(1)"), "banner.landing_url", id="javascript"
        ),
        pytest.param(
            banner(landing_url="data:text/html,<script>alert(1)</script>"),
            "banner.landing_url",
            id="data",
        ),
        pytest.param(banner(landing_url="/relative"), "banner.landing_url", id="relative"),
        pytest.param(banner(landing_url="ftp://x"), "banner.landing_url", id="ftp"),
        pytest.param(banner(image_url="javascript:alert(1)"), "banner.image_url", id="image-js"),
        pytest.param(banner(image_url="/ads/1.png"), "banner.image_url", id="image-relative"),
        pytest.param(video(media_url="ftp://x"), "video.media_url", id="media-ftp"),
        pytest.param(banner(alt_text="x" * 201), "banner.alt_text", id="alt-text-too-long"),
        pytest.param(native(title="x" * 101), "native.title", id="title-too-long"),
        pytest.param(banner(alt_text="Only {price} today"), "banner.alt_text", id="unknown-macro"),
        pytest.param(native(title="Hello {product"), "native.title", id="stray-brace"),
    ],
)
async def test_an_invalid_creative_is_refused_naming_the_field(
    client: httpx.AsyncClient, creative: dict[str, Any], field: str
) -> None:
    campaign = await campaign_with(client)

    response = await client.post(creatives_url(campaign), json=creative, headers=ADMIN)

    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["field"] == field
    assert (await stored_campaign(client, campaign)) == campaign


async def test_a_creative_without_a_type_is_refused(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client)
    creative = {k: v for k, v in banner().items() if k != "type"}

    response = await client.post(creatives_url(campaign), json=creative, headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "type"


async def test_adding_a_creative_of_a_format_the_campaign_does_not_allow_is_refused(
    client: httpx.AsyncClient,
) -> None:
    campaign = await campaign_with(client, formats=["banner"])

    response = await client.post(creatives_url(campaign), json=video(), headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "creatives.1.type"
    assert (await stored_campaign(client, campaign)) == campaign


async def test_replacing_a_creative_by_one_of_a_format_the_campaign_does_not_allow_is_refused(
    client: httpx.AsyncClient,
) -> None:
    campaign = await campaign_with(client, formats=["banner"])
    old = campaign["creatives"][0]

    response = await client.put(creatives_url(campaign, old["id"]), json=video(), headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "creatives.0.type"
    assert (await stored_campaign(client, campaign)) == campaign


async def test_adding_a_creative_with_an_id_already_in_the_campaign_is_refused(
    client: httpx.AsyncClient,
) -> None:
    campaign = await campaign_with(client, creatives=[banner(id="spring")])

    response = await client.post(creatives_url(campaign), json=native(id="spring"), headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "creatives"


async def test_a_replacement_with_an_invalid_url_is_refused(client: httpx.AsyncClient) -> None:
    campaign = await campaign_with(client)
    old = campaign["creatives"][0]

    response = await client.put(
        creatives_url(campaign, old["id"]),
        json=banner(landing_url="javascript:alert(1)"),
        headers=ADMIN,
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "banner.landing_url"
    assert (await stored_campaign(client, campaign)) == campaign
