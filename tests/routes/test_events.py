"""``POST /v1/events``: signed batches of events from an advertiser's backend."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import hiredis
import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis

from retarget.app import create_app
from retarget.clock import FrozenClock
from retarget.embedded_redis import EmbeddedRedis
from retarget.settings import Settings
from retarget.signing import sign
from retarget.users import new_cookie_id
from tests.helpers import ADMIN, create_advertiser, create_audience, export_user

DAY = 86_400
MIB = 1024 * 1024
EMAIL = hashlib.sha256(b"ann@example.com").hexdigest()
MAID = "6f1c2b8e-3d4a-4f5b-9c6d-7e8f9a0b1c2d"


@pytest.fixture
async def shop(client: httpx.AsyncClient) -> dict[str, Any]:
    advertiser = await create_advertiser(client)
    books = await create_audience(
        client, advertiser["id"], name="book buyers", categories=["books"], membership_days=30
    )
    big = await create_audience(client, advertiser["id"], name="big spenders", min_value=100)
    return {"advertiser": advertiser, "books": books, "big": big}


def purchase(clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    """A book purchase a minute ago by a new browser, with ``overrides`` applied."""
    return {
        "event_id": "order-1",
        "type": "purchase",
        "ts": int(clock.now()) - 60,
        "user": {"cookie": new_cookie_id()},
        "sku": "B-1",
        "category": "books",
        "value": 25.0,
        "currency": "EUR",
    } | overrides


async def post_events(
    client: httpx.AsyncClient,
    advertiser: dict[str, Any],
    events: list[dict[str, Any]],
    clock: FrozenClock,
    *,
    secret: str | None = None,
    signed_at: float | None = None,
) -> httpx.Response:
    """POST the events as the advertiser's backend would, signed with its (or ``secret``) key."""
    body = orjson.dumps({"events": events})
    return await post_body(client, advertiser, body, clock, secret=secret, signed_at=signed_at)


async def post_body(
    client: httpx.AsyncClient,
    advertiser: dict[str, Any],
    body: bytes,
    clock: FrozenClock,
    *,
    secret: str | None = None,
    signed_at: float | None = None,
) -> httpx.Response:
    timestamp = int(clock.now() if signed_at is None else signed_at)
    signature = sign(secret or advertiser["s2s_secret"], body, timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-Retarget-Advertiser": advertiser["id"],
        "X-Retarget-Signature": signature,
    }
    return await client.post("/v1/events", content=body, headers=headers)


async def user_keys(redis: Redis) -> list[bytes]:
    """Every key except the configuration's: what events have written."""
    return [k async for k in redis.scan_iter() if not k.startswith(b"{cfg}")]


def assert_error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]


# What a batch does


async def test_a_signed_batch_puts_the_buyer_into_the_matching_audiences(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    uid = new_cookie_id()

    response = await post_events(
        client, shop["advertiser"], [purchase(clock, user={"cookie": uid}, value=150)], clock
    )

    assert response.status_code == 200, response.text
    exported = await export_user(client, "cookie", uid)
    assert sorted(m["audience_id"] for m in exported["memberships"]) == sorted(
        [shop["books"]["id"], shop["big"]["id"]]
    )
    assert exported["last_purchases"][shop["advertiser"]["id"]]["sku"] == "B-1"


async def test_the_response_reports_each_event_by_index(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    events = [purchase(clock, event_id="a"), purchase(clock, event_id="b")]

    response = await post_events(client, shop["advertiser"], events, clock)

    assert response.json() == {
        "accepted": 2,
        "duplicates": 0,
        "rejected": 0,
        "spooled": 0,
        "results": [
            {"index": 0, "event_id": "a", "status": "accepted", "reason": None, "field": None},
            {"index": 1, "event_id": "b", "status": "accepted", "reason": None, "field": None},
        ],
    }


async def test_a_membership_runs_from_the_time_of_the_event_not_of_the_request(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    uid = new_cookie_id()
    bought_at = int(clock.now()) - 10 * DAY

    await post_events(
        client, shop["advertiser"], [purchase(clock, ts=bought_at, user={"cookie": uid})], clock
    )

    (membership,) = (await export_user(client, "cookie", uid))["memberships"]
    assert membership["since"] == bought_at
    assert membership["expires_at"] == bought_at + 30 * DAY


async def test_a_buyer_known_by_email_and_maid_joins_under_both_namespaces(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    event = purchase(clock, user={"email": EMAIL.upper(), "maid": MAID.upper()})

    await post_events(client, shop["advertiser"], [event], clock)

    by_email = await export_user(client, "email", EMAIL)
    by_maid = await export_user(client, "maid", MAID)
    assert [m["audience_id"] for m in by_email["memberships"]] == [shop["books"]["id"]]
    assert [m["audience_id"] for m in by_maid["memberships"]] == [shop["books"]["id"]]


async def test_a_view_does_not_join_a_purchase_audience(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    uid = new_cookie_id()

    response = await post_events(
        client, shop["advertiser"], [purchase(clock, type="view", user={"cookie": uid})], clock
    )

    assert response.json()["accepted"] == 1
    assert (await export_user(client, "cookie", uid))["memberships"] == []


async def test_a_late_older_purchase_does_not_replace_the_latest_one(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    uid = new_cookie_id()
    today = purchase(clock, event_id="o-today", sku="NEW", user={"cookie": uid})
    await post_events(client, shop["advertiser"], [today], clock)

    older = purchase(
        clock, event_id="o-older", sku="OLD", ts=int(clock.now()) - 10 * DAY, user={"cookie": uid}
    )
    await post_events(client, shop["advertiser"], [older], clock)

    last = (await export_user(client, "cookie", uid))["last_purchases"][shop["advertiser"]["id"]]
    assert last["sku"] == "NEW"


# Signatures


async def test_a_wrong_signature_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock, redis: Redis
) -> None:
    response = await post_events(
        client, shop["advertiser"], [purchase(clock)], clock, secret="s2s_guessed"
    )

    assert_error(response, 401, "unauthorized", "X-Retarget-Signature")
    assert await user_keys(redis) == []


async def test_a_missing_signature_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock, redis: Redis
) -> None:
    response = await client.post(
        "/v1/events",
        content=orjson.dumps({"events": [purchase(clock)]}),
        headers={"X-Retarget-Advertiser": shop["advertiser"]["id"]},
    )

    assert_error(response, 401, "unauthorized", "X-Retarget-Signature")
    assert await user_keys(redis) == []


async def test_a_signature_older_than_five_minutes_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock, redis: Redis
) -> None:
    body = orjson.dumps({"events": [purchase(clock)]})
    signed_at = clock.now()
    clock.advance(301)

    response = await post_body(client, shop["advertiser"], body, clock, signed_at=signed_at)

    assert_error(response, 401, "unauthorized", "X-Retarget-Signature")
    assert await user_keys(redis) == []


async def test_a_signature_with_a_non_ascii_byte_is_refused_not_a_server_error(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    headers = {
        "X-Retarget-Advertiser": shop["advertiser"]["id"],
        "X-Retarget-Signature": f"t={int(clock.now())},v1=\xe9".encode("latin-1"),
    }

    response = await client.post(
        "/v1/events", content=orjson.dumps({"events": [purchase(clock)]}), headers=headers
    )

    assert_error(response, 401, "unauthorized", "X-Retarget-Signature")


async def test_an_unknown_advertiser_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock, redis: Redis
) -> None:
    stranger = {"id": "adv_000000000000", "s2s_secret": shop["advertiser"]["s2s_secret"]}

    response = await post_events(client, stranger, [purchase(clock)], clock)

    assert_error(response, 401, "unauthorized", "X-Retarget-Advertiser")
    assert await user_keys(redis) == []


async def test_a_rotated_secret_stops_the_old_one_working(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    advertiser = shop["advertiser"]
    rotated = await client.post(f"/v1/advertisers/{advertiser['id']}/secret", headers=ADMIN)
    new_secret = rotated.json()["s2s_secret"]

    with_old = await post_events(client, advertiser, [purchase(clock)], clock)
    with_new = await post_events(client, advertiser, [purchase(clock)], clock, secret=new_secret)

    assert new_secret != advertiser["s2s_secret"]
    assert_error(with_old, 401, "unauthorized", "X-Retarget-Signature")
    assert with_new.status_code == 200
    assert with_new.json()["accepted"] == 1


# Each event is counted once


async def test_an_event_sent_in_two_batches_counts_once(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    uid = new_cookie_id()
    event = purchase(clock, user={"cookie": uid})

    first = await post_events(client, shop["advertiser"], [event], clock)
    clock.advance(3600)
    second = await post_events(client, shop["advertiser"], [event], clock)

    assert first.json()["results"][0]["status"] == "accepted"
    assert (second.json()["accepted"], second.json()["duplicates"]) == (0, 1)
    assert second.json()["results"][0]["status"] == "duplicate"
    seen = (await export_user(client, "cookie", uid))["seen_event_ids"]
    assert seen == [[f"{shop['advertiser']['id']}:order-1", int(clock.now()) - 3600]]


async def test_an_event_sent_twice_in_one_batch_counts_once(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    uid = new_cookie_id()
    event = purchase(clock, user={"cookie": uid})

    response = await post_events(client, shop["advertiser"], [event, event], clock)

    assert [r["status"] for r in response.json()["results"]] == ["accepted", "duplicate"]
    assert (response.json()["accepted"], response.json()["duplicates"]) == (1, 1)
    assert len((await export_user(client, "cookie", uid))["seen_event_ids"]) == 1


async def test_a_hundred_concurrent_replays_of_one_event_record_one_purchase(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    uid = new_cookie_id()
    # Each replay carries a different value, so the stored purchase shows which one counted.
    replays = [purchase(clock, user={"cookie": uid}, value=float(i)) for i in range(100)]

    responses = await asyncio.gather(
        *(post_events(client, shop["advertiser"], [event], clock) for event in replays)
    )

    statuses = [r.json()["results"][0]["status"] for r in responses]
    assert statuses.count("accepted") == 1
    assert statuses.count("duplicate") == 99
    exported = await export_user(client, "cookie", uid)
    assert len(exported["seen_event_ids"]) == 1
    counted = replays[statuses.index("accepted")]
    assert exported["last_purchases"][shop["advertiser"]["id"]]["value"] == counted["value"]


async def test_a_replay_does_not_move_a_membership(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    uid = new_cookie_id()
    event = purchase(clock, user={"cookie": uid})
    await post_events(client, shop["advertiser"], [event], clock)
    before = (await export_user(client, "cookie", uid))["memberships"]

    clock.advance(DAY)
    await post_events(client, shop["advertiser"], [event | {"ts": int(clock.now())}], clock)

    assert (await export_user(client, "cookie", uid))["memberships"] == before


async def test_an_event_id_is_remembered_per_user_identifier(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    """Dedup lives with each user's keys (one hash tag), so another identifier is not a replay."""
    uid = new_cookie_id()
    both = purchase(clock, user={"cookie": uid, "email": EMAIL})
    await post_events(client, shop["advertiser"], [purchase(clock, user={"cookie": uid})], clock)

    response = await post_events(client, shop["advertiser"], [both], clock)

    assert response.json()["results"][0]["status"] == "accepted"
    assert len((await export_user(client, "cookie", uid))["seen_event_ids"]) == 1
    assert len((await export_user(client, "email", EMAIL))["seen_event_ids"]) == 1


async def test_the_same_event_id_from_two_advertisers_is_two_events(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    other = await create_advertiser(client, name="Garden Shop", domain="garden.example.com")
    uid = new_cookie_id()
    event = purchase(clock, user={"cookie": uid})

    await post_events(client, shop["advertiser"], [event], clock)
    response = await post_events(client, other, [event], clock)

    assert response.json()["results"][0]["status"] == "accepted"
    assert len((await export_user(client, "cookie", uid))["seen_event_ids"]) == 2


# Malformed events and bodies


async def test_one_malformed_event_is_reported_and_the_others_are_recorded(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    good, bad = new_cookie_id(), new_cookie_id()
    events = [
        purchase(clock, event_id="a", user={"cookie": good}),
        purchase(clock, event_id="b", user={"cookie": bad}, currency="euros"),
        purchase(clock, event_id="c", user={"email": "ann@example.com"}),
    ]

    response = await post_events(client, shop["advertiser"], events, clock)

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 0, 2)
    assert [(r["index"], r["status"], r["field"]) for r in body["results"]] == [
        (0, "accepted", None),
        (1, "rejected", "currency"),
        (2, "rejected", "user.email"),
    ]
    assert all(r["reason"] for r in body["results"][1:])
    assert (await export_user(client, "cookie", good))["memberships"]
    assert (await export_user(client, "cookie", bad))["memberships"] == []


async def test_an_event_older_than_35_days_is_rejected_naming_ts(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    event = purchase(clock, ts=int(clock.now()) - 35 * DAY - 1)

    response = await post_events(client, shop["advertiser"], [event], clock)

    assert response.json()["results"][0]["field"] == "ts"


async def test_a_signed_body_that_is_not_json_is_a_400(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    response = await post_body(client, shop["advertiser"], b'{"events": [', clock)

    assert_error(response, 400, "invalid_json", "body")


@pytest.mark.parametrize(
    "payload",
    [{"events": []}, {"events": {}}, {"event": []}, [], "events"],
    ids=["no-events", "events-not-a-list", "misnamed", "a-list", "a-string"],
)
async def test_a_body_without_a_list_of_events_is_a_422(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock, payload: Any
) -> None:
    response = await post_body(client, shop["advertiser"], orjson.dumps(payload), clock)

    assert_error(response, 422, "validation_error", "events")


async def test_a_batch_of_1001_events_is_a_422_and_nothing_is_written(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock, redis: Redis
) -> None:
    events = [purchase(clock, event_id=f"o-{i}") for i in range(1001)]

    response = await post_events(client, shop["advertiser"], events, clock)

    assert_error(response, 422, "validation_error", "events")
    assert await user_keys(redis) == []


async def test_a_body_declared_over_1_mib_is_a_413(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock
) -> None:
    response = await post_body(client, shop["advertiser"], b" " * (MIB + 1), clock)

    assert_error(response, 413, "payload_too_large", "body")


async def test_a_streamed_body_over_1_mib_is_refused_before_it_is_read_whole(
    client: httpx.AsyncClient, shop: dict[str, Any]
) -> None:
    chunks_sent = 0

    async def endless_body() -> AsyncIterator[bytes]:  # no Content-Length: a chunked upload
        nonlocal chunks_sent
        for _ in range(1000):  # 8 MB if read to the end
            chunks_sent += 1
            yield b"x" * 8192

    response = await client.post(
        "/v1/events",
        content=endless_body(),
        headers={"X-Retarget-Advertiser": shop["advertiser"]["id"]},
    )

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert chunks_sent <= MIB // 8192 + 2, "the body was read well past the limit"


# Cost: one EVALSHA per event and user, all of a batch in one round trip


def batch_of_buyers(clock: FrozenClock, size: int) -> list[dict[str, Any]]:
    return [purchase(clock, event_id=f"o-{i}") for i in range(size)]


async def test_a_batch_of_1000_events_runs_one_evalsha_each_and_no_script_loading(
    client: httpx.AsyncClient, shop: dict[str, Any], clock: FrozenClock, redis: Redis
) -> None:
    # INFO commandstats counts what the server executed, not how it arrived: it shows each
    # event cost one cached-script call (no EVAL, no SCRIPT LOAD/EXISTS), not how many round
    # trips carried them (see the next test). The script's own HSET/ZADD/... are counted under
    # their names too, so only the client-facing commands are compared.
    await post_events(client, shop["advertiser"], batch_of_buyers(clock, 1), clock)  # warm
    before = await redis.info("commandstats")

    response = await post_events(client, shop["advertiser"], batch_of_buyers(clock, 1000), clock)

    after = await redis.info("commandstats")

    def calls(stats: dict[str, Any], command: str) -> int:
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

    assert response.json()["accepted"] == 1000
    assert calls(after, "evalsha") - calls(before, "evalsha") == 1000
    for command in ("eval", "script", "multi", "exec"):
        assert calls(after, command) == calls(before, command), command


class WireTap:
    """A TCP relay between the app and Redis that counts round trips.

    A round trip starts when the client sends a command while every command it sent before
    has been answered; commands written before their predecessors' replies arrive (a
    pipeline) ride on the same trip. Both directions are parsed as RESP with hiredis.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.round_trips = 0
        self.commands: list[list[bytes]] = []
        self._relays: set[asyncio.Task[None]] = set()

    def reset(self) -> None:
        self.round_trips = 0
        self.commands.clear()

    async def relay(
        self, app_reader: asyncio.StreamReader, app_writer: asyncio.StreamWriter
    ) -> None:
        """Serve one connection of the app (an ``asyncio.start_server`` callback)."""
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        requests, replies = hiredis.Reader(), hiredis.Reader()
        unanswered = 0

        async def app_to_redis() -> None:
            nonlocal unanswered
            while data := await app_reader.read(65536):
                if unanswered == 0 and not requests.has_data():
                    self.round_trips += 1
                requests.feed(data)
                while (command := requests.gets()) is not False:
                    self.commands.append(command)
                    unanswered += 1
                redis_writer.write(data)
                await redis_writer.drain()
            redis_writer.close()

        async def redis_to_app() -> None:
            nonlocal unanswered
            while data := await redis_reader.read(65536):
                replies.feed(data)
                while replies.gets() is not False:
                    unanswered -= 1
                app_writer.write(data)
                await app_writer.drain()
            app_writer.close()

        try:
            await asyncio.gather(app_to_redis(), redis_to_app())
        except (ConnectionError, asyncio.CancelledError):
            redis_writer.close()
            app_writer.close()

    async def close(self) -> None:
        for task in self._relays:
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)


@pytest.fixture
async def tapped_client(
    redis_server: EmbeddedRedis, settings: Settings, clock: FrozenClock, redis: Redis
) -> AsyncIterator[tuple[httpx.AsyncClient, WireTap]]:
    """A client of an app whose Redis traffic passes through a WireTap."""
    assert redis_server.port is not None
    tap = WireTap(redis_server.port)
    relay = await asyncio.start_server(tap.relay, "127.0.0.1", 0)
    port = relay.sockets[0].getsockname()[1]
    tapped = settings.model_copy(
        # No background catalog polling or counter flushing: only the request under test
        # talks to Redis.
        update={
            "redis_url": f"redis://127.0.0.1:{port}/0",
            "catalog_refresh_seconds": 3600,
            "counters_flush_seconds": 3600,
        }
    )
    app = create_app(tapped, clock=clock)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            yield c, tap
    relay.close()
    await tap.close()
    await relay.wait_closed()


async def test_a_batch_of_1000_events_is_recorded_in_one_redis_round_trip(
    tapped_client: tuple[httpx.AsyncClient, WireTap], clock: FrozenClock
) -> None:
    # Counted on the wire, because MONITOR and INFO commandstats only show which commands
    # ran: 1,000 EVALSHAs awaited one by one on one connection would look the same there.
    client, tap = tapped_client
    advertiser = await create_advertiser(client)
    await create_audience(client, advertiser["id"], categories=["books"])
    # Warm up: the connection is opened (CLIENT SETNAME/SETINFO) and the script loaded.
    await post_events(client, advertiser, batch_of_buyers(clock, 1), clock)
    tap.reset()

    response = await post_events(client, advertiser, batch_of_buyers(clock, 1000), clock)

    assert response.json()["accepted"] == 1000
    assert tap.round_trips == 1
    assert len(tap.commands) == 1000
    assert {command[0].upper() for command in tap.commands} == {b"EVALSHA"}
