"""The demo, as a person uses it: buy, be brought back by an ad, buy again, see it counted."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DemoService

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def buy(page: Page, product: str) -> None:
    """Press the product's buy button; return once the confirmation page's pixel answered."""
    with page.expect_response(lambda r: "/px/" in r.url) as pixel:
        page.get_by_role("button", name=f"Buy {product}").click()
    assert pixel.value.status == 200
    assert pixel.value.headers.get("x-retarget-error") is None
    expect(page.get_by_role("heading", name="Thank you for your order")).to_be_visible()


def test_a_buyer_is_brought_back_by_the_social_ad_and_the_dashboard_credits_social(
    page: Page, demo_service: DemoService, screenshot
) -> None:
    base = demo_service.base_url
    page.goto(f"{base}/demo/shop")
    buy(page, "Moka Pot")

    page.goto(f"{base}/demo/social")
    feed = page.frame_locator("#ad-feed iframe")
    expect(feed.locator("a.card")).to_contain_text("Still thinking about Moka Pot?")
    expect(feed.locator("a.card")).to_contain_text("Come back and buy again")
    banner = page.frame_locator("#ad-sidebar iframe").locator("img[width='300']")
    expect(banner).to_have_attribute(
        "alt", "Still thinking about Moka Pot? Come back and buy again"
    )
    expect(banner).to_be_visible()
    assert banner.evaluate("image => image.complete && image.naturalWidth > 0")
    screenshot("1-social-banner")

    feed.locator("a.card").click()
    expect(page).to_have_url(re.compile(re.escape(f"{base}/demo/shop") + r"\?utm_source="))
    expect(page.get_by_role("status")).to_contain_text("Welcome back")
    buy(page, "Moka Pot")
    screenshot("2-bought-again")

    page.goto(f"{base}/dashboard")
    page.get_by_label("Advertiser key").fill(demo_service.advertiser_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("body")).to_have_attribute("data-charts", "ready")
    social = page.locator("#by-category tr[data-site-category='social'] td")
    expect(social).to_have_text(
        ["social", re.compile(r"[1-9]\d*"), "1", "1", *[re.compile(".*")] * 3]
    )
    publisher = page.locator("#by-publisher tbody tr", has_text="Demo Social").locator("td")
    expect(publisher.nth(3)).to_have_text("1")  # clicks
    expect(publisher.nth(4)).to_have_text("1")  # conversions
    expect(page.locator("#chart-categories")).to_be_visible()
    expect(page.locator("#chart-daily")).to_be_visible()
    screenshot("3-dashboard")


def test_a_visitor_who_never_bought_is_shown_no_ad(page: Page, demo_service: DemoService) -> None:
    with page.expect_response(lambda r: "/v1/ad?" in r.url and "feed" in r.url) as answer:
        page.goto(f"{demo_service.base_url}/demo/social")
    assert answer.value.headers.get("x-retarget-no-fill") is not None
    expect(page.frame_locator("#ad-feed iframe").locator("body")).to_be_empty()


def test_the_video_site_plays_the_vast_ad_and_links_its_click_through(
    page: Page, demo_service: DemoService, screenshot
) -> None:
    base = demo_service.base_url
    page.goto(f"{base}/demo/shop")
    buy(page, "Burr Grinder")

    page.goto(f"{base}/demo/video")
    expect(page.locator("#player")).to_have_attribute("data-state", "playing")
    video = page.locator("#player-video")
    assert video.evaluate("v => v.currentSrc") == f"{base}/static/demo/ad.webm"
    link = page.get_by_role("link", name="Visit the advertiser")
    expect(link).to_have_attribute("href", re.compile(re.escape(f"{base}/t/click/")))
    screenshot("video-player")

    link.click()
    expect(page).to_have_url(re.compile(re.escape(f"{base}/demo/shop") + r"\?utm_source="))
