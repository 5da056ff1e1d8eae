"""Consent: may this request's user profile be used for a personalised ad? Decided first."""

from __future__ import annotations

import base64
import binascii

# TCF v2 purposes a retargeting ad needs: 1 store/access information on a device,
# 3 create a personalised ads profile, 4 select personalised ads.
REQUIRED_PURPOSES = (1, 3, 4)
_PURPOSES_OFFSET = 152  # bit offset of PurposesConsent in a TCF v2 core string


def tcf_purposes(consent_string: str) -> frozenset[int] | None:
    """The purposes consented to in a TCF v2 string, or None when it is not one."""
    core = consent_string.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(core + "=" * (-len(core) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) * 8 < _PURPOSES_OFFSET + 24:
        return None
    bits = int.from_bytes(raw, "big")
    total = len(raw) * 8

    def bit(offset: int) -> int:
        return (bits >> (total - 1 - offset)) & 1

    version = (bits >> (total - 6)) & 0b111111
    if version != 2:
        return None
    return frozenset(p for p in range(1, 25) if bit(_PURPOSES_OFFSET + p - 1))


def personalised_ads_allowed(gdpr: int | None, tcf: str | None, gpc: bool) -> bool:
    """No profile use under Global Privacy Control, nor under GDPR without TCF consent
    to purposes 1, 3 and 4."""
    if gpc:
        return False
    if gdpr != 1:
        return True
    purposes = tcf_purposes(tcf) if tcf else None
    return purposes is not None and all(p in purposes for p in REQUIRED_PURPOSES)
