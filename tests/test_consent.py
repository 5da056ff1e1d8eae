"""Consent: whether a request's user profile may be used, decided before it is read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retarget.consent import personalised_ads_allowed, tcf_purposes
from tests.helpers import tcf_consent

FULL_CONSENT = tcf_consent(1, 3, 4)


def test_a_tcf_v2_string_yields_the_purposes_it_consents_to() -> None:
    assert tcf_purposes(tcf_consent(1, 2, 3, 4, 7, 24)) == {1, 2, 3, 4, 7, 24}


def test_a_tcf_v2_string_without_purposes_yields_none_consented() -> None:
    assert tcf_purposes(tcf_consent()) == frozenset()


def test_only_the_core_segment_of_a_tcf_string_is_read() -> None:
    with_segments = (
        FULL_CONSENT + ".IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAA"
    )

    assert tcf_purposes(with_segments) == {1, 3, 4}


def test_a_version_1_consent_string_is_not_read_as_tcf_v2() -> None:
    assert tcf_purposes(tcf_consent(1, 3, 4, version=1)) is None


@pytest.mark.parametrize(
    "text",
    ["", "not base64 at all!", "CQw4jQAQw4jQ", "A", "🍪🍪🍪", FULL_CONSENT[:28]],
    ids=["empty", "junk", "too-short", "one-char", "non-ascii", "cut-before-purposes"],
)
def test_a_string_that_is_not_a_tcf_v2_core_string_yields_none(text: str) -> None:
    assert tcf_purposes(text) is None


@given(st.text(max_size=300))
def test_no_string_makes_tcf_parsing_raise(text: str) -> None:
    purposes = tcf_purposes(text)

    assert purposes is None or purposes <= set(range(1, 25))


def test_outside_gdpr_personalised_ads_need_no_consent_string() -> None:
    assert personalised_ads_allowed(0, None, gpc=False) is True


def test_without_a_gdpr_flag_personalised_ads_need_no_consent_string() -> None:
    assert personalised_ads_allowed(None, None, gpc=False) is True


def test_under_gdpr_consent_to_purposes_1_3_and_4_allows_personalised_ads() -> None:
    assert personalised_ads_allowed(1, FULL_CONSENT, gpc=False) is True


def test_under_gdpr_no_consent_string_refuses_personalised_ads() -> None:
    assert personalised_ads_allowed(1, None, gpc=False) is False


def test_under_gdpr_a_malformed_consent_string_refuses_personalised_ads() -> None:
    assert personalised_ads_allowed(1, "garbage", gpc=False) is False


@pytest.mark.parametrize("missing", [1, 3, 4])
def test_under_gdpr_consent_missing_any_of_purposes_1_3_4_refuses_personalised_ads(
    missing: int,
) -> None:
    others = [p for p in range(1, 11) if p != missing]

    assert personalised_ads_allowed(1, tcf_consent(*others), gpc=False) is False


def test_global_privacy_control_refuses_personalised_ads_outside_gdpr() -> None:
    assert personalised_ads_allowed(0, None, gpc=True) is False


def test_global_privacy_control_wins_over_a_full_tcf_consent() -> None:
    assert personalised_ads_allowed(1, FULL_CONSENT, gpc=True) is False
