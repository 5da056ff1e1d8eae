"""Once per run: build or find the shop (``shop.prepare``) before any user starts.

The master (or the single local process) runs the setup in ``test_start`` and hands the
result to its workers as a message; users wait for it in ``on_start``. A setup that fails
stops the run, and the exit code says so (``thresholds``).
"""

from __future__ import annotations

import logging
from typing import Any

import gevent
from gevent.event import Event
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from .shop import Fixture, SetupError, prepare

log = logging.getLogger("retarget.locust")
MESSAGE = "retarget-fixture"


class SetupState:
    """The fixture of the current run, shared by every user of this process."""

    def __init__(self) -> None:
        self.fixture: Fixture | None = None
        self.error: str | None = None
        self.ready = Event()

    def reset(self) -> None:
        self.ready.clear()

    def publish(self, fixture: Fixture | None, error: str | None = None) -> None:
        self.fixture, self.error = fixture, error
        self.ready.set()

    def wait(self, timeout: float = 60.0) -> Fixture | None:
        """The fixture once the setup is done; None if it failed or never came."""
        self.ready.wait(timeout)
        return self.fixture


state = SetupState()


@events.init.add_listener
def listen_for_the_fixture(environment: Environment, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(
            MESSAGE, lambda msg, **_: state.publish(Fixture.from_message(msg.data))
        )


@events.test_start.add_listener
def set_up_the_shop(environment: Environment, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # the master sends the fixture
    state.reset()
    options = environment.parsed_options
    try:
        if not environment.host:
            raise SetupError("no --host: the URL of the retarget service to load")
        fixture = prepare(environment.host, options.admin_token, options.seed_buyers)
    except SetupError as exc:
        log.error("setup failed: %s", exc)
        state.publish(None, str(exc))
        runner = environment.runner
        if runner is not None:
            gevent.spawn_later(0, runner.quit)  # after start() returns, not inside it
        return
    log.info(
        "setup done: advertiser %s, pixel %s, publishers %s",
        fixture.advertiser_id,
        fixture.pixel_id,
        ", ".join(f"{name} {site.publisher_id}" for name, site in fixture.sites.items()),
    )
    state.publish(fixture)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(MESSAGE, fixture.to_message())
