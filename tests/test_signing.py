"""HMAC signatures of server-to-server requests (pure: no app, no Redis)."""

from __future__ import annotations

import pytest

from retarget.errors import Unauthorized
from retarget.signing import SIGNATURE_HEADER, sign, verify

SECRET = "s2s_test-secret"
BODY = b'{"events":[{"event_id":"o-1"}]}'
NOW = 1_800_000_000
TOLERANCE = 300


def refusal(header: str | None, body: bytes = BODY, secret: str = SECRET) -> Unauthorized:
    """The Unauthorized that ``verify`` raises for this header (fails the test if none)."""
    with pytest.raises(Unauthorized) as raised:
        verify(secret, body, header, NOW, TOLERANCE)
    return raised.value


def test_a_signature_made_with_the_secret_over_the_body_is_accepted() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW), NOW, TOLERANCE)


def test_the_header_reads_t_then_v1_hex() -> None:
    timestamp, digest = sign(SECRET, BODY, NOW).split(",")

    assert timestamp == f"t={NOW}"
    assert digest.startswith("v1=")
    assert len(digest.removeprefix("v1=")) == 64


def test_a_signature_exactly_at_the_tolerance_is_accepted() -> None:
    verify(SECRET, BODY, sign(SECRET, BODY, NOW - TOLERANCE), NOW, TOLERANCE)


def test_a_tampered_body_is_refused() -> None:
    header = sign(SECRET, BODY, NOW)

    error = refusal(header, body=BODY.replace(b"o-1", b"o-2"))

    assert error.field == SIGNATURE_HEADER
    assert "does not match" in error.message


def test_a_signature_made_with_another_secret_is_refused() -> None:
    header = sign("s2s_someone-else", BODY, NOW)

    assert refusal(header).field == SIGNATURE_HEADER


def test_a_signature_older_than_the_tolerance_is_refused() -> None:
    header = sign(SECRET, BODY, NOW - TOLERANCE - 1)

    error = refusal(header)

    assert error.field == SIGNATURE_HEADER
    assert str(TOLERANCE) in error.message


def test_a_signature_further_in_the_future_than_the_tolerance_is_refused() -> None:
    header = sign(SECRET, BODY, NOW + TOLERANCE + 1)

    assert refusal(header).field == SIGNATURE_HEADER


def test_a_valid_digest_under_a_different_timestamp_is_refused() -> None:
    """The timestamp is signed with the body: it cannot be refreshed to replay a request."""
    digest = sign(SECRET, BODY, NOW - 3600).partition(",")[2]

    assert refusal(f"t={NOW},{digest}").field == SIGNATURE_HEADER


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_signature_is_refused(header: str | None) -> None:
    error = refusal(header)

    assert error.field == SIGNATURE_HEADER
    assert error.message == "missing signature"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        ",",
        "=",
        f"t={NOW}",
        "v1=" + "0" * 64,
        f"t=yesterday,v1={'0' * 64}",
        f"t=-{NOW},v1={'0' * 64}",
        f"t={NOW}.5,v1={'0' * 64}",
        f"t={NOW},v1=",
    ],
)
def test_a_malformed_signature_is_refused_naming_the_header(header: str) -> None:
    assert refusal(header).field == SIGNATURE_HEADER


@pytest.mark.parametrize(
    "header",
    [
        # HTTP header bytes arrive decoded as latin-1: b"\xb2" is "²", which str.isdigit()
        # accepts and int() refuses.
        f"t=\u00b2,v1={'0' * 64}",
        # Python refuses int() of more than 4,300 digits.
        f"t={'9' * 5000},v1={'0' * 64}",
        # hmac.compare_digest refuses str arguments with non-ASCII characters.
        f"t={NOW},v1=\u00e9",
    ],
    ids=["superscript-digit", "huge-timestamp", "non-ascii-digest"],
)
def test_a_signature_with_odd_characters_is_refused_not_crashed_on(header: str) -> None:
    assert refusal(header).field == SIGNATURE_HEADER
