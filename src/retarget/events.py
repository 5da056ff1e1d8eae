"""What an advertiser tells us happened: a purchase, a product view, an add-to-cart."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    PURCHASE = "purchase"
    VIEW = "view"
    CART = "cart"


MAX_TEXT = 128  # sku, category, order / event id


@dataclass(frozen=True, slots=True)
class Event:
    """One event, already validated, for one advertiser."""

    advertiser_id: str
    type: EventType
    ts: float
    sku: str | None = None
    product: str | None = None  # the product's name, for the {product} macro
    category: str | None = None
    value: float | None = None
    currency: str | None = None
    # The order id (pixel) or event id (server-to-server): the same id counts once.
    dedup_id: str | None = None
