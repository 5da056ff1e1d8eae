"""Browsers: show the ads publishers were served (impression beacon) and click a few."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from locust import task

from .publishers import served_pages
from .simulated import SimulatedUser

IMPRESSION_NAME = "/t/imp/[token]"
CLICK_NAME = "/t/click/[token]"


def path_of(url: str) -> str:
    """The path (and query) of a tracking URL: its host is the service's own, and the run
    reaches the service at ``--host``."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class Browser(SimulatedUser):
    """Shows pages as fast as publishers fill them, so impressions follow the ads served
    rather than the number of browser users; idles briefly while there is none."""

    weight = 3

    def wait_time(self) -> float:
        return 0.0 if served_pages else 0.05

    def on_start(self) -> None:
        super().on_start()
        self.click_ratio = self.environment.parsed_options.click_ratio

    @task
    def view_page(self) -> None:
        try:
            ads = served_pages.popleft()
        except IndexError:
            return  # no page with ads yet: wait and look again
        for ad in ads:
            self.see(ad)
            if self.rng.random() < self.click_ratio:
                self.click(ad)

    def see(self, ad: dict[str, Any]) -> None:
        with self.client.get(
            path_of(ad["impression_url"]), name=IMPRESSION_NAME, catch_response=True
        ) as response:
            content_type = response.headers.get("Content-Type", "")
            if response.status_code != 200 or not content_type.startswith("image/gif"):
                response.failure(f"{response.status_code} {content_type}")

    def click(self, ad: dict[str, Any]) -> None:
        # The landing page is the advertiser's site, outside the test: never follow it.
        with self.client.get(
            path_of(ad["click_url"]), name=CLICK_NAME, allow_redirects=False, catch_response=True
        ) as response:
            location = response.headers.get("Location", "")
            if response.status_code == 302 and location.startswith(("https://", "http://")):
                response.success()
            else:
                response.failure(f"{response.status_code} to {location!r}")
