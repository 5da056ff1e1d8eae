"""The run's verdict: the exit code is 1 when any request failed, when the p99 over all
requests is above ``--max-p99-ms``, when nothing was requested, or when the setup failed."""

from __future__ import annotations

import logging
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from .setup import state

log = logging.getLogger("retarget.locust")


def verdict(
    requests: int, failures: int, p99_ms: float, max_p99_ms: float, setup_error: str | None
) -> list[str]:
    """Why the run failed; empty when it passed."""
    if setup_error:
        return [f"setup failed: {setup_error}"]
    reasons = []
    if requests == 0:
        reasons.append("no request was made")
    if failures:
        reasons.append(f"{failures} of {requests} requests failed")
    if p99_ms > max_p99_ms:
        reasons.append(f"p99 {p99_ms:.0f} ms is over --max-p99-ms {max_p99_ms:g}")
    return reasons


@events.quitting.add_listener
def set_exit_code(environment: Environment, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # the master judges the whole run
    total = environment.stats.total
    reasons = verdict(
        total.num_requests,
        total.num_failures,
        total.get_response_time_percentile(0.99) or 0.0,
        environment.parsed_options.max_p99_ms,
        state.error,
    )
    for reason in reasons:
        log.error("load test failed: %s", reason)
    if reasons:
        environment.process_exit_code = 1
    else:
        log.info("load test passed: p99 %.0f ms", total.get_response_time_percentile(0.99) or 0)
