"""What every simulated client has: the run's fixture, a Zipf population, no cookie jar."""

from __future__ import annotations

import logging
import random
from http.cookiejar import DefaultCookiePolicy

from gevent.event import Event
from locust import FastHttpUser, between

from .population import Population
from .setup import state
from .shop import Fixture

log = logging.getLogger("retarget.locust")


class SimulatedUser(FastHttpUser):
    """One locust user stands for many browsers or one publisher's ad server, so it keeps no
    cookies: each request names its browser (``Cookie: rt_uid=...``) itself."""

    abstract = True
    wait_time = between(0.1, 0.5)
    fixture: Fixture
    population: Population
    rng: random.Random

    def on_start(self) -> None:
        fixture = state.wait()
        if fixture is None:
            if state.error is None:
                log.error("no setup from the master within 60 s: this user stays idle")
            # The run is stopping (or has nothing to run with): idle until stopped. A StopUser
            # here would log a traceback for every user.
            Event().wait()
        self.fixture = fixture
        self.client.cookiejar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        options = self.environment.parsed_options
        self.rng = random.Random()
        self.population = Population(options.users_population, options.zipf_exponent, self.rng)
