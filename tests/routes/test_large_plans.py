"""A context with many candidates: its plan travels to Redis as a script of its own, which
Redis keeps, instead of with every decision (see store/decisions.py)."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from retarget.clock import FrozenClock
from retarget.settings import Settings
from tests.helpers import (
    Shop,
    command_names,
    commands_sent,
    create_campaign,
    decide,
    open_shop,
    purchase,
    serving,
)

CHANGES = 100
CAMPAIGNS = 80  # their plan's strings (~6 KB) pass PLAN_SCRIPT_MIN_BYTES (4 KB)


async def many_campaigns(client: httpx.AsyncClient, shop: Shop) -> list[dict[str, object]]:
    """CAMPAIGNS campaigns of the shop for its book buyers, the last one bidding highest."""
    return [
        await create_campaign(
            client, shop.advertiser_id, [shop.audience_id], bid_cpm=1 + n / 10, name=f"c{n}"
        )
        for n in range(CAMPAIGNS)
    ]


async def cached_scripts(redis: Redis) -> int:
    return int((await redis.info("memory"))["number_of_cached_scripts"])


async def test_with_many_candidates_the_best_bid_wins_in_one_short_round_trip(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    """MONITOR shows one EVALSHA per decision, and it carries the user's keys and four short
    arguments, not the candidates."""
    quiet = settings.model_copy(
        update={"catalog_refresh_seconds": 3600, "counters_flush_seconds": 3600}
    )
    async with serving(quiet, clock) as client:
        shop = await open_shop(client)
        campaigns = await many_campaigns(client, shop)
        buyer = await purchase(client, shop.pixel_id)
        await decide(client, shop.api_key, buyer, ("feed-bottom",))  # sends the script
        responses = []

        async def one_decision() -> None:
            responses.append(await decide(client, shop.api_key, buyer))

        sent = await commands_sent(redis, one_decision)

    assert responses[0].json()["decisions"]["feed-top"]["campaign_id"] == campaigns[-1]["id"]
    assert command_names(sent) == ["EVALSHA"]
    assert len(sent[0]) < 300, sent[0]


async def test_a_large_plan_still_fills_after_redis_forgets_every_script(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    shop = await open_shop(client)
    campaigns = await many_campaigns(client, shop)
    buyer = await purchase(client, shop.pixel_id)
    first = await decide(client, shop.api_key, buyer)

    await redis.script_flush()
    second = await decide(client, shop.api_key, buyer, ("feed-bottom",))

    assert first.json()["decisions"]["feed-top"]["campaign_id"] == campaigns[-1]["id"]
    assert second.json()["decisions"]["feed-bottom"]["campaign_id"] == campaigns[-1]["id"]


async def test_the_plan_scripts_redis_keeps_stay_under_the_bound_as_the_catalog_changes(
    settings: Settings, clock: FrozenClock, redis: Redis
) -> None:
    """Every change of a candidate's rules makes a new plan, so a new script: past
    RETARGET_DECISION_SCRIPTS_MAX_BYTES the worker flushes Redis's script cache."""
    bound = settings.model_copy(update={"decision_scripts_max_bytes": 1024 * 1024})
    await redis.script_flush()
    async with serving(bound, clock) as client:
        shop = await open_shop(client)
        campaigns = await many_campaigns(client, shop)
        buyer = await purchase(client, shop.pixel_id)
        script_bytes, most_cached, answers = 0, 0, []
        for change in range(CHANGES):
            # Every change of the top campaign's rules is a new plan: a new script (~15 KB).
            response = await client.patch(
                f"/v1/campaigns/{campaigns[-1]['id']}",
                json={"min_interval_seconds": change},
                headers={"Authorization": "Bearer " + settings_admin(settings)},
            )
            assert response.status_code == 200, response.text
            answers.append(await decide(client, shop.api_key, buyer, ("feed-bottom",)))
            most_cached = max(most_cached, await cached_scripts(redis))
            script_bytes = int((await redis.info("memory"))["used_memory_scripts"])

    assert {a.json()["decisions"]["feed-bottom"] is not None for a in answers} == {True}
    # Without the bound Redis would keep all 100 plan scripts (~1.5 MB), and the generic ones.
    assert most_cached < CHANGES
    assert 0 < script_bytes <= 2 * 1024 * 1024


def settings_admin(settings: Settings) -> str:
    token = settings.admin_token
    assert token is not None
    return token.get_secret_value()
