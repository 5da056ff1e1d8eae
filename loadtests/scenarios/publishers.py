"""Publishers: the ad servers of a social feed, a games site and a video site asking for ads.

Every filled decision is handed to the browsers (``served_pages``), which show the ads: the
publisher's server asks, the reader's browser fires the impression.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from typing import Any

from locust import events, task
from locust.env import Environment

from .simulated import SimulatedUser

log = logging.getLogger("retarget.locust")
DECISION_NAME = "/v1/decisions"
NO_FILL = "X-Retarget-No-Fill"

# Pages with ads, waiting for a browser; the oldest go when browsers fall behind.
served_pages: deque[list[dict[str, Any]]] = deque(maxlen=10_000)
# Decisions by outcome ("filled <site>", "no-fill <reason>"), logged when the run ends.
outcomes: Counter[str] = Counter()


class Publisher(SimulatedUser):
    weight = 5

    @task(5)
    def social_feed(self) -> None:
        self.decide("social")

    @task(3)
    def games_level_end(self) -> None:
        self.decide("games")

    @task(2)
    def video_preroll(self) -> None:
        self.decide("video")

    def decide(self, site_name: str) -> None:
        site = self.fixture.sites[site_name]
        body = {
            "user": {"id": self.population.user(), "namespace": "cookie"},
            "site": {"domain": site.domain, "page": f"https://{site.domain}/"},
            "placements": [{"id": placement} for placement in site.placements],
        }
        with self.client.post(
            "/v1/decisions",
            json=body,
            headers={"Authorization": f"Bearer {site.api_key}"},
            name=DECISION_NAME,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
                return
            try:
                ads = [ad for ad in response.json()["decisions"].values() if ad]
            except (ValueError, KeyError, TypeError, AttributeError):
                response.failure(f"not a decision: {(response.text or '')[:200]}")
                return
            no_fill = response.headers.get(NO_FILL)
            if ads:
                outcomes[f"filled {site_name}"] += 1
                served_pages.append(ads)
            else:
                outcomes[f"no-fill {no_fill or 'unknown'}"] += 1
            # A no-fill is an answer, except when the service could not reach its store.
            if no_fill in ("redis_error", "breaker_open"):
                response.failure(f"no-fill: {no_fill}")


@events.quitting.add_listener
def log_outcomes(environment: Environment, **_kwargs: Any) -> None:
    if outcomes:
        summary = ", ".join(f"{name}: {count}" for name, count in sorted(outcomes.items()))
        log.info("decisions by outcome: %s", summary)
