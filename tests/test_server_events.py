"""Validating a server-to-server batch, event by event (pure: no app, no Redis)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retarget.errors import InvalidInput
from retarget.events import EventType
from retarget.server_events import MAX_BATCH, parse_batch
from retarget.users import Namespace, UserRef, new_cookie_id

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DAY = 86_400
MAX_AGE = 35 * DAY
ADVERTISER = "adv_0123456789ab"
COOKIE = new_cookie_id()
EMAIL = hashlib.sha256(b"ann@example.com").hexdigest()
MAID = "6f1c2b8e-3d4a-4f5b-9c6d-7e8f9a0b1c2d"


def event(**overrides: Any) -> dict[str, Any]:
    """A purchase that parses, with ``overrides`` applied (a value of None removes the key)."""
    fields = {
        "event_id": "order-1",
        "type": "purchase",
        "ts": int(NOW) - 60,
        "user": {"cookie": COOKIE},
        "sku": "B-1",
        "category": "books",
        "value": 25.0,
        "currency": "EUR",
    } | overrides
    return {name: value for name, value in fields.items() if value is not None}


def parse(*events: Any) -> tuple[list, list]:
    return parse_batch({"events": list(events)}, ADVERTISER, NOW, MAX_AGE)


def test_a_well_formed_purchase_is_parsed_for_the_advertiser() -> None:
    (parsed,), rejected = parse(event())

    assert rejected == []
    assert parsed.index == 0
    assert parsed.event_id == "order-1"
    assert parsed.users == [UserRef(Namespace.COOKIE, COOKIE)]
    assert parsed.event.advertiser_id == ADVERTISER
    assert parsed.event.type is EventType.PURCHASE
    assert parsed.event.ts == NOW - 60
    assert (parsed.event.sku, parsed.event.category) == ("B-1", "books")
    assert (parsed.event.value, parsed.event.currency) == (25.0, "EUR")


def test_the_event_id_is_what_deduplicates_the_event() -> None:
    (parsed,), _ = parse(event(event_id="order-77"))

    assert parsed.event.dedup_id == "order-77"


def test_type_defaults_to_purchase() -> None:
    (parsed,), _ = parse(event(type=None))

    assert parsed.event.type is EventType.PURCHASE


def test_one_malformed_event_is_rejected_with_its_field_and_the_others_are_parsed() -> None:
    parsed, rejected = parse(
        event(event_id="a"), event(event_id="b", currency="euro"), event(event_id="c")
    )

    assert [p.event_id for p in parsed] == ["a", "c"]
    assert [p.index for p in parsed] == [0, 2]
    (bad,) = rejected
    assert (bad.index, bad.event_id, bad.field) == (1, "b", "currency")
    assert bad.reason


def test_an_item_that_is_not_an_object_is_rejected_without_an_event_id() -> None:
    parsed, rejected = parse("order-1", event())

    assert [p.index for p in parsed] == [1]
    (bad,) = rejected
    assert (bad.index, bad.event_id) == (0, None)


def test_an_unknown_field_is_rejected_by_name() -> None:
    _, (bad,) = parse(event(colour="red"))

    assert bad.field == "colour"


@pytest.mark.parametrize("field", ["event_id", "ts", "user"])
def test_a_missing_required_field_is_rejected_by_name(field: str) -> None:
    _, (bad,) = parse(event(**{field: None}))

    assert bad.field == field


@pytest.mark.parametrize("user", [{}, {"cookie": None}, {"cookie": "", "email": ""}])
def test_an_event_without_any_user_id_is_rejected_naming_user(user: dict[str, Any]) -> None:
    _, (bad,) = parse(event(user=user))

    assert bad.field == "user"
    assert "at least one of cookie, email, maid" in bad.reason


def test_an_unknown_user_namespace_is_rejected_by_name() -> None:
    _, (bad,) = parse(event(user={"cookie": COOKIE, "phone": "+15550100"}))

    assert bad.field == "user.phone"


@pytest.mark.parametrize(
    "email",
    ["ann@example.com", EMAIL[:-1], EMAIL + "0", "g" * 64, EMAIL[:32]],
    ids=["plain-address", "63-hex", "65-hex", "not-hex", "md5-length"],
)
def test_an_email_that_is_not_a_sha256_hex_digest_is_rejected(email: str) -> None:
    _, (bad,) = parse(event(user={"email": email}))

    assert bad.field == "user.email"


def test_an_upper_case_email_digest_is_stored_lower_case() -> None:
    (parsed,), _ = parse(event(user={"email": EMAIL.upper()}))

    assert parsed.users == [UserRef(Namespace.EMAIL, EMAIL)]


@pytest.mark.parametrize(
    "maid", [MAID.upper(), MAID.replace("-", ""), "{" + MAID + "}", "urn:uuid:" + MAID]
)
def test_a_maid_is_canonicalised_to_a_lower_case_hyphenated_uuid(maid: str) -> None:
    (parsed,), _ = parse(event(user={"maid": maid}))

    assert parsed.users == [UserRef(Namespace.MAID, MAID)]


def test_a_maid_that_is_not_a_uuid_is_rejected() -> None:
    _, (bad,) = parse(event(user={"maid": "not-a-device"}))

    assert bad.field == "user.maid"


def test_a_cookie_we_could_not_have_issued_is_rejected() -> None:
    _, (bad,) = parse(event(user={"cookie": "short"}))

    assert bad.field == "user.cookie"


def test_each_identifier_of_an_event_becomes_its_own_user() -> None:
    (parsed,), _ = parse(event(user={"cookie": COOKIE, "email": EMAIL, "maid": MAID}))

    assert parsed.users == [
        UserRef(Namespace.COOKIE, COOKIE),
        UserRef(Namespace.EMAIL, EMAIL),
        UserRef(Namespace.MAID, MAID),
    ]


def test_one_bad_identifier_rejects_the_whole_event() -> None:
    parsed, (bad,) = parse(event(user={"cookie": COOKIE, "email": "ann@example.com"}))

    assert parsed == []
    assert bad.field == "user.email"


def test_a_ts_older_than_the_window_is_rejected_naming_ts() -> None:
    _, (bad,) = parse(event(ts=int(NOW - MAX_AGE) - 1))

    assert bad.field == "ts"
    assert "35 days" in bad.reason


def test_a_ts_at_the_start_of_the_window_is_accepted() -> None:
    parsed, rejected = parse(event(ts=int(NOW - MAX_AGE)))

    assert (len(parsed), rejected) == (1, [])


def test_a_ts_more_than_300_seconds_in_the_future_is_rejected_naming_ts() -> None:
    _, (bad,) = parse(event(ts=int(NOW) + 301))

    assert bad.field == "ts"
    assert "future" in bad.reason


def test_a_ts_up_to_300_seconds_ahead_is_accepted_as_clock_skew() -> None:
    parsed, rejected = parse(event(ts=int(NOW) + 300))

    assert (len(parsed), rejected) == (1, [])


@pytest.mark.parametrize(
    "ts",
    [
        int(NOW) - 3600,
        float(NOW) - 3600,
        str(int(NOW) - 3600),
        "2027-01-15T07:00:00Z",
        "2027-01-15T07:00:00+00:00",
        "2027-01-15T08:00:00+01:00",
        "2027-01-15T07:00:00",  # no offset: read as UTC
        "2027-01-15 07:00:00Z",
    ],
)
def test_unix_seconds_and_iso_8601_name_the_same_instant(ts: Any) -> None:
    (parsed,), _ = parse(event(ts=ts))

    assert parsed.event.ts == NOW - 3600


@pytest.mark.parametrize("ts", ["yesterday", "2027-13-01T00:00:00Z", True, [], {}])
def test_a_ts_that_is_no_time_is_rejected_naming_ts(ts: Any) -> None:
    _, (bad,) = parse(event(ts=ts))

    assert bad.field == "ts"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"type": "refund"}, "type"),
        ({"value": -1}, "value"),
        ({"value": "lots"}, "value"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": 42}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"sku": "B-1\n"}, "sku"),
        ({"category": "\x00"}, "category"),
    ],
)
def test_a_malformed_field_is_rejected_by_name(overrides: dict[str, Any], field: str) -> None:
    _, (bad,) = parse(event(**overrides))

    assert bad.field == field


def test_a_batch_of_1000_events_is_accepted() -> None:
    parsed, rejected = parse(*(event(event_id=f"o-{i}") for i in range(MAX_BATCH)))

    assert (len(parsed), rejected) == (MAX_BATCH, [])


def test_a_batch_of_1001_events_is_refused_whole() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse(*(event(event_id=f"o-{i}") for i in range(MAX_BATCH + 1)))

    assert raised.value.field == "events"


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse()

    assert raised.value.field == "events"


@pytest.mark.parametrize("payload", [[], None, "events", {}, {"events": {}}, {"event": []}])
def test_a_body_that_is_not_an_object_with_an_events_list_is_refused(payload: Any) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_batch(payload, ADVERTISER, NOW, MAX_AGE)

    assert raised.value.field == "events"


# Any JSON document: what orjson.loads can hand to parse_batch.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
# Events that are close to valid, so the checks beyond the first ones are reached too.
event_fields = ("event_id", "type", "ts", "user", "sku", "category", "value", "currency")
near_events = st.builds(
    lambda base, user, changes: event(user=user) | base | changes,
    base=st.just({}),
    user=st.dictionaries(
        st.sampled_from(["cookie", "email", "maid"]),
        st.sampled_from([COOKIE, EMAIL, EMAIL.upper(), MAID, "", None]) | json_values,
        max_size=3,
    ),
    changes=st.dictionaries(
        st.sampled_from(event_fields),
        json_values
        | st.sampled_from(["purchase", "view", "cart", "USD", "2027-01-15T07:00:00Z"])
        | st.integers(int(NOW - MAX_AGE - DAY), int(NOW + DAY)),
        max_size=3,
    ),
)
payloads = json_values | st.fixed_dictionaries(
    {"events": st.lists(near_events | json_values, min_size=0, max_size=6)}
)


def parsed_or_refused(payload: Any) -> tuple[list, list] | InvalidInput:
    try:
        return parse_batch(payload, ADVERTISER, NOW, MAX_AGE)
    except InvalidInput as refused:
        return refused


@settings(max_examples=200, deadline=None)
@given(payload=payloads)
def test_any_json_body_is_parsed_or_refused_with_invalid_input(payload: Any) -> None:
    outcome = parsed_or_refused(payload)

    if isinstance(outcome, InvalidInput):
        assert outcome.field == "events"
        return
    parsed, rejected = outcome
    assert sorted([p.index for p in parsed] + [r.index for r in rejected]) == list(
        range(len(payload["events"]))
    )
    for event_parsed in parsed:
        assert event_parsed.users
        assert NOW - MAX_AGE <= event_parsed.event.ts <= NOW + 300
    for event_rejected in rejected:
        assert event_rejected.reason
