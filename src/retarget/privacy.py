"""Consent and opt-out: decided before anything about a user is read or written."""

from __future__ import annotations

OPT_OUT_COOKIE = "rt_optout"
OPT_OUT_MAX_AGE = 5 * 365 * 24 * 3600


def may_track(sec_gpc: str | None, opt_out_cookie: str | None) -> bool:
    """False when the browser sends Global Privacy Control or carries our opt-out cookie."""
    if opt_out_cookie is not None:
        return False
    return sec_gpc is None or sec_gpc.strip() != "1"
