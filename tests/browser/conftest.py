"""Browser tests: Debian's chromium, driven by playwright, against a real ``retarget serve``
process with the demo seeded by ``retarget demo``.

One browser and one service per test module (playwright's sync API keeps an event loop
running while it is open, which the async tests that follow must not find); each test gets
a fresh browser context (no cookies). Without a ``chromium`` on PATH the tests are skipped,
with the command that installs it; CI sets ``RETARGET_REQUIRE_BROWSER=1``, which turns that
into a failure.
Screenshots go to ``var/screenshots/`` (printed at the end of the run).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from retarget.cli import seed_demo
from retarget.settings import Settings
from tests.e2e.conftest import Service, service_env

REQUIRE_BROWSER = os.environ.get("RETARGET_REQUIRE_BROWSER") == "1"
INSTALL = "sudo apt-get install -y chromium"
# No sandbox: CI runs as root in a container; the rest keeps Chromium off the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A shared 2-core CI machine can take seconds to decode a video or lay out a page.
expect.set_options(timeout=10_000)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
_taken: list[Path] = []


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = f"no chromium on PATH; install it to run the browser tests: {INSTALL}"
        if REQUIRE_BROWSER:
            pytest.fail(f"{reason} (RETARGET_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str, service: Service) -> Iterator[Browser]:
    """Chromium, launched while the service (started first) boots."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@dataclass(frozen=True)
class DemoService:
    base_url: str  # http://localhost:<port>: the host the demo's landing URLs use
    advertiser_key: str  # the demo shop's dashboard key, as `retarget demo` printed it
    service: Service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``retarget serve`` on a free port, booting (not waited for yet)."""
    data_dir = tmp_path_factory.mktemp("demo-service")
    # A 2 s decision deadline, as in the other tests: a busy CI machine is no reason for a
    # test's ad to be a no-fill.
    env = service_env(data_dir, decision_deadline_ms="2000", log_format="text")
    started = Service(env, data_dir / "service.log")
    try:
        yield started
    finally:
        started.reap()


@pytest.fixture(scope="module")
def demo_service(service: Service) -> DemoService:
    """The service, ready and seeded by the same function as ``retarget demo --url``."""
    service.wait_ready()
    base_url = f"http://localhost:{service.port}"
    data_dir = Path(service.log_path).parent
    settings = Settings(data_dir=data_dir, admin_token=None, secret_key=None)
    seeded = seed_demo(settings, base_url)
    key = json.loads((data_dir / "demo.json").read_text())["advertiser_key"]
    assert key == seeded.advertiser_key
    return DemoService(base_url, key, service)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile (no cookies) per test."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """``var/screenshots/``, emptied of an earlier run's pictures."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture
def screenshot(page: Page, screenshots: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """``screenshot("banner")`` saves ``var/screenshots/<test>-banner.png``."""

    def take(name: str) -> Path:
        path = screenshots / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        _taken.append(path)
        return path

    return take


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _taken:
        terminalreporter.write_line(f"browser screenshots ({len(_taken)}): {SCREENSHOTS}")
