"""Tracking tokens: signed, expiring, and never trusted before the signature is checked."""

from __future__ import annotations

import base64
import dataclasses
import hmac
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retarget.errors import InvalidInput
from retarget.tracking import MAX_TOKEN, Claims, new_decision_id, sign, verify

SECRET = "test-secret-key"
NOW = 1_800_000_000
CLAIMS = Claims(
    decision_id="dec_abc",
    advertiser_id="adv_1",
    campaign_id="cmp_1",
    creative_id="cr_1",
    publisher_id="pub_1",
    site_category="social",
    placement_id="feed-top",
    namespace="cookie",
    user_id="AAAAAAAAAAAAAAAAAAAAAA",
    issued_at=NOW,
    expires_at=NOW + 86_400,
)


def flip(text: str, index: int) -> str:
    """Replace one base64url character by another that decodes to different bits."""
    replacement = "B" if text[index] != "B" else "C"
    return text[:index] + replacement + text[index + 1 :]


def test_a_signed_token_verifies_to_its_claims() -> None:
    token = sign(SECRET, CLAIMS)

    assert verify(SECRET, token, NOW) == CLAIMS


def token_by_hand(version: str, digest: str, secret: str = SECRET) -> str:
    """A token in the documented format: base64url payload '.' the first 16 bytes of
    HMAC-<digest> of it, both unpadded."""
    values = [str(getattr(CLAIMS, f.name)) for f in dataclasses.fields(Claims)]
    payload = "|".join([version, *values]).encode()
    mac = hmac.new(secret.encode(), payload, digest).digest()[:16]

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64(payload)}.{b64(mac)}"


def test_tokens_are_signed_with_hmac_blake2s() -> None:
    assert sign(SECRET, CLAIMS) == token_by_hand("2", "blake2s")


def test_a_version_1_token_signed_with_hmac_sha256_still_verifies() -> None:
    # Tokens already out in ads when a server is upgraded keep counting until they expire.
    assert verify(SECRET, token_by_hand("1", "sha256"), NOW) == CLAIMS


@pytest.mark.parametrize(
    ("version", "digest"), [("1", "blake2s"), ("2", "sha256"), ("3", "sha256"), ("", "sha256")]
)
def test_a_token_whose_version_does_not_match_its_signature_is_refused(
    version: str, digest: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        verify(SECRET, token_by_hand(version, digest), NOW)

    assert refused.value.field == "token"


def test_a_token_is_a_payload_and_a_signature_in_url_safe_characters() -> None:
    token = sign(SECRET, CLAIMS)

    payload, signature = token.split(".")
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert set(payload) <= allowed
    assert set(signature) <= allowed
    assert len(token) <= MAX_TOKEN


def test_a_token_with_a_changed_payload_character_is_refused() -> None:
    payload, signature = sign(SECRET, CLAIMS).split(".")

    with pytest.raises(InvalidInput, match="signature"):
        verify(SECRET, f"{flip(payload, 10)}.{signature}", NOW)


def test_a_token_with_a_changed_signature_character_is_refused() -> None:
    payload, signature = sign(SECRET, CLAIMS).split(".")

    with pytest.raises(InvalidInput, match="signature"):
        verify(SECRET, f"{payload}.{flip(signature, 5)}", NOW)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = sign("another-secret", CLAIMS)

    with pytest.raises(InvalidInput, match="signature"):
        verify(SECRET, token, NOW)


def test_a_payload_with_another_tokens_signature_is_refused() -> None:
    payload, _ = sign(SECRET, CLAIMS).split(".")
    _, signature = sign(SECRET, dataclasses.replace(CLAIMS, campaign_id="cmp_2")).split(".")

    with pytest.raises(InvalidInput):
        verify(SECRET, f"{payload}.{signature}", NOW)


def test_a_token_is_valid_until_the_second_before_it_expires() -> None:
    token = sign(SECRET, CLAIMS)

    assert verify(SECRET, token, CLAIMS.expires_at - 1) == CLAIMS


def test_a_token_is_refused_from_the_second_it_expires() -> None:
    token = sign(SECRET, CLAIMS)

    with pytest.raises(InvalidInput, match="expired"):
        verify(SECRET, token, CLAIMS.expires_at)


@pytest.mark.parametrize("field", ["user_id", "placement_id", "campaign_id", "decision_id"])
def test_a_claim_containing_the_field_separator_cannot_be_signed(field: str) -> None:
    claims = dataclasses.replace(CLAIMS, **{field: "a|b"})

    with pytest.raises(ValueError, match=r"\|"):
        sign(SECRET, claims)


@pytest.mark.parametrize(
    "token",
    ["", ".", "a.b.c", "no-dot-at-all", "x" * (MAX_TOKEN + 1), "%%%.&&&", "abcde.fghij"],
    ids=["empty", "dot", "three-parts", "no-dot", "too-long", "not-base64", "bad-padding"],
)
def test_a_malformed_token_is_refused_as_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        verify(SECRET, token, NOW)

    assert refused.value.field == "token"


def test_decision_ids_are_unique_and_url_safe() -> None:
    ids = {new_decision_id() for _ in range(1000)}

    assert len(ids) == 1000
    assert all("|" not in i and "." not in i and "/" not in i for i in ids)


def test_a_forked_worker_does_not_repeat_its_parents_decision_ids() -> None:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's half
        os.write(write, " ".join(new_decision_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        childs = set(pipe.read().split())

    assert len(childs) == 100
    assert not childs & {new_decision_id() for _ in range(100)}


@given(st.text(max_size=2 * MAX_TOKEN))
def test_an_arbitrary_string_never_verifies_and_raises_only_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput):
        verify(SECRET, text, NOW)


@given(st.binary(max_size=200), st.binary(max_size=40))
def test_arbitrary_base64_parts_never_verify(payload: bytes, signature: bytes) -> None:
    def encode(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    with pytest.raises(InvalidInput):
        verify(SECRET, f"{encode(payload)}.{encode(signature)}", NOW)
