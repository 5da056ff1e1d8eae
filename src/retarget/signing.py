"""HMAC signatures of server-to-server requests.

Header ``X-Retarget-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``,
the scheme Stripe's webhooks use: the timestamp is signed with the body, so a captured
request cannot be replayed after the tolerance, and event ids make replays inside it harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from retarget.errors import Unauthorized

SIGNATURE_HEADER = "X-Retarget-Signature"
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")  # ASCII only: str.isdigit() accepts "²"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a client sends (also used by our tests and load generator)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, body: bytes, header: str | None, now: float, tolerance: int) -> None:
    """Raise Unauthorized unless ``header`` signs ``body`` with ``secret`` recently enough."""
    field = SIGNATURE_HEADER
    if not header:
        raise Unauthorized("missing signature", field=field)
    parts = dict(p.partition("=")[::2] for p in header.split(","))
    timestamp, signature = parts.get("t", ""), parts.get("v1", "")
    if not _UNIX_SECONDS.fullmatch(timestamp) or not signature:
        raise Unauthorized("signature must look like t=<unix seconds>,v1=<hex>", field=field)
    if abs(now - int(timestamp)) > tolerance:
        raise Unauthorized(f"signature timestamp is more than {tolerance}s old", field=field)
    expected = sign(secret, body, int(timestamp)).rpartition("v1=")[2]
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise Unauthorized("signature does not match the body", field=field)
