"""The purchase pixel: what a hit's query string means, and the 43-byte GIF it answers with."""

from __future__ import annotations

import re
from collections.abc import Mapping

from retarget.errors import InvalidInput
from retarget.events import MAX_TEXT, Event, EventType

# The smallest transparent 1x1 GIF (GIF89a, one-colour palette, transparency extension).
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
assert len(GIF) == 43

_VALUE = re.compile(r"\d{1,10}(\.\d{1,4})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")


def _text(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_TEXT:
        raise InvalidInput(f"longer than {MAX_TEXT} characters", field=name)
    if not _PRINTABLE.fullmatch(raw):
        raise InvalidInput("contains control characters", field=name)
    return raw


def parse_hit(params: Mapping[str, str], advertiser_id: str, now: float) -> Event:
    """Turn a pixel hit's parameters into an event; raise InvalidInput naming the bad one.

    Unknown parameters (cache busters, page tags' own additions) are ignored.
    """
    ev = params.get("ev") or EventType.PURCHASE.value
    try:
        event_type = EventType(ev)
    except ValueError:
        raise InvalidInput("must be purchase, view or cart", field="ev") from None

    value = None
    raw_value = params.get("val")
    if raw_value:
        if not _VALUE.fullmatch(raw_value):
            raise InvalidInput("must be a non-negative decimal number", field="val")
        value = float(raw_value)

    currency = params.get("cur") or None
    if currency is not None and not _CURRENCY.fullmatch(currency):
        raise InvalidInput("must be an ISO 4217 code such as EUR", field="cur")

    return Event(
        advertiser_id=advertiser_id,
        type=event_type,
        ts=now,
        sku=_text(params, "sku"),
        product=_text(params, "pn"),
        category=_text(params, "cat"),
        value=value,
        currency=currency,
        dedup_id=_text(params, "oid"),
    )
