"""Which touch a purchase is credited to, as a pure function."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from retarget.advertisers import Advertiser
from retarget.attribution import Touch, TouchKind, attribute, credited_touch
from retarget.events import Event, EventType

DAY = 86_400
NOW = 1_800_000_000


def touch(kind: TouchKind, age: int, campaign: str = "c1") -> Touch:
    return Touch(kind, NOW - age, campaign, "cr1", "pub1", "social")


def advertiser(**fields: object) -> Advertiser:
    return Advertiser(
        id="adv_1",
        name="Books",
        domain="books.example.com",
        pixel_id="px_1",
        s2s_secret="s",
        created_at=datetime(2027, 1, 1, tzinfo=UTC),
        **fields,
    )


def order(
    value: float | None = 30.0, currency: str | None = "EUR", kind: EventType = EventType.PURCHASE
) -> Event:
    return Event("adv_1", kind, NOW, value=value, currency=currency)


def test_a_click_inside_the_window_beats_a_more_recent_view() -> None:
    click, view = touch(TouchKind.CLICK, 3 * DAY), touch(TouchKind.VIEW, 60)

    assert credited_touch(NOW, [view, click], 7, 1) == click


def test_a_view_is_credited_when_the_click_is_out_of_its_window() -> None:
    click, view = touch(TouchKind.CLICK, 8 * DAY), touch(TouchKind.VIEW, 60)

    assert credited_touch(NOW, [click, view], 7, 1) == view


def test_a_touch_exactly_at_the_windows_end_still_counts_and_after_it_does_not() -> None:
    assert credited_touch(NOW, [touch(TouchKind.CLICK, 7 * DAY)], 7, 1) is not None
    assert credited_touch(NOW, [touch(TouchKind.CLICK, 7 * DAY + 1)], 7, 1) is None


def test_a_touch_after_the_purchase_is_never_credited() -> None:
    assert credited_touch(NOW, [touch(TouchKind.CLICK, -60)], 7, 1) is None


def test_only_purchases_convert_and_revenue_is_in_millionths() -> None:
    clicked = [touch(TouchKind.CLICK, 60)]

    conversion = attribute(order(30.25), clicked, advertiser())

    assert conversion is not None
    assert (conversion.metric, conversion.revenue_micros) == ("conversion_click", 30_250_000)
    assert attribute(order(kind=EventType.CART), clicked, advertiser()) is None
    assert attribute(order(None), clicked, advertiser()).revenue_micros == 0  # type: ignore[union-attr]


def test_a_purchase_in_another_currency_converts_without_revenue() -> None:
    clicked = [touch(TouchKind.CLICK, 60)]
    eur = advertiser(currency="EUR")

    assert attribute(order(30, "USD"), clicked, eur).revenue_micros == 0  # type: ignore[union-attr]
    assert attribute(order(30, None), clicked, eur).revenue_micros == 30 * 10**6  # type: ignore[union-attr]


touches = st.builds(
    touch, st.sampled_from(list(TouchKind)), st.integers(-DAY, 40 * DAY), st.sampled_from("abc")
)


@given(st.lists(touches, max_size=6), st.integers(0, 30), st.integers(0, 30))
def test_the_credited_touch_is_in_its_window_and_no_eligible_click_is_passed_over(
    candidates: list[Touch], click_days: int, view_days: int
) -> None:
    credited = credited_touch(NOW, candidates, click_days, view_days)

    window = {TouchKind.CLICK: click_days * DAY, TouchKind.VIEW: view_days * DAY}
    eligible = [t for t in candidates if 0 <= NOW - t.ts <= window[t.kind]]
    if credited is None:
        assert eligible == []
    else:
        assert credited in eligible
        clicks = [t for t in eligible if t.kind is TouchKind.CLICK]
        if clicks:
            assert credited.kind is TouchKind.CLICK
            assert credited.ts == max(t.ts for t in clicks)
        else:
            assert credited.ts == max(t.ts for t in eligible)
