"""Which ad gets the credit for a purchase (pure).

A purchase is a conversion of the advertiser's last click on one of its ads when that
click is at most ``click_window_days`` old, else of its last impression when that is at
most ``view_window_days`` old, else of nothing. Touches are not consumed: every purchase
inside a window counts, as in the industry's usual last-touch attribution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from retarget.advertisers import Advertiser
from retarget.audiences import DAY
from retarget.events import Event, EventType

MICROS = 1_000_000


class TouchKind(StrEnum):
    CLICK = "click"
    VIEW = "view"


@dataclass(frozen=True, slots=True)
class Touch:
    """A user's last click on, or last view of, one of an advertiser's ads."""

    kind: TouchKind
    ts: int
    campaign_id: str
    creative_id: str
    publisher_id: str
    site_category: str


@dataclass(frozen=True, slots=True)
class Conversion:
    """A purchase credited to a touch; ``revenue_micros`` in millionths of the currency."""

    touch: Touch
    advertiser_id: str
    ts: float
    revenue_micros: int

    @property
    def metric(self) -> str:
        """The report counter it adds one to."""
        return "conversion_click" if self.touch.kind is TouchKind.CLICK else "conversion_view"


def credited_touch(
    purchase_ts: float, touches: Iterable[Touch], click_window_days: int, view_window_days: int
) -> Touch | None:
    """The latest click inside the click window, else the latest view inside the view window.

    A touch after the purchase (a late server-to-server event) is never credited."""
    windows = {
        TouchKind.CLICK: click_window_days * DAY,
        TouchKind.VIEW: view_window_days * DAY,
    }
    best: Touch | None = None
    for touch in touches:
        age = purchase_ts - touch.ts
        if not 0 <= age <= windows[touch.kind]:
            continue
        if best is None or (touch.kind is TouchKind.CLICK, touch.ts) > (
            best.kind is TouchKind.CLICK,
            best.ts,
        ):
            best = touch
    return best


def attribute(event: Event, touches: Iterable[Touch], advertiser: Advertiser) -> Conversion | None:
    """The conversion a newly recorded event makes, if it is a purchase with a touch to credit.

    Revenue is the purchase's value, or nothing when it is in another currency than the
    advertiser's (when the advertiser has one)."""
    if event.type is not EventType.PURCHASE:
        return None
    touch = credited_touch(
        event.ts, touches, advertiser.click_window_days, advertiser.view_window_days
    )
    if touch is None:
        return None
    same_currency = (
        advertiser.currency is None
        or event.currency is None
        or event.currency == advertiser.currency
    )
    revenue = round((event.value or 0) * MICROS) if same_currency else 0
    return Conversion(touch, advertiser.id, event.ts, revenue)
