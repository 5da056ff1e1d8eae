"""The locust load test as CI runs it: short headless runs against a real ``retarget serve``."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Service, service_env

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
ADMIN_TOKEN = "locust-admin-token"
SMOKE_SECONDS = 20
# High enough never to refuse, low enough that the buckets are still kept and spent.
UNLIMITED = "1000000000"
RATE_LIMITS = (
    "pixel_hits_per_ip_per_minute",
    "pixel_hits_per_pixel_per_minute",
    "decisions_per_key_per_minute",
    "api_requests_per_key_per_minute",
)
LOCUST_PUBLISHERS = ["locust games", "locust social", "locust video"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One service (with its embedded redis-server) for every run of this module."""
    data_dir = tmp_path_factory.mktemp("locust-service")
    # Every simulated browser comes from 127.0.0.1: a per-IP limit would refuse the load test.
    env = service_env(
        data_dir,
        admin_token=ADMIN_TOKEN,
        secret_key="locust-secret-key",
        log_level="warning",
        **{name: UNLIMITED for name in RATE_LIMITS},
    )
    service = Service(env, data_dir / "service.log")
    try:
        service.wait_ready()
        yield service
    finally:
        service.reap()


def run_locust(
    service: Service, csv_prefix: Path, seconds: int, *options: str, users: int = 20
) -> subprocess.CompletedProcess[str]:
    """``locust --headless`` with the load test's options; the admin token from the env."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(users), "-r", "10", "-t", f"{seconds}s", "--host", service.base_url,
        "--csv", str(csv_prefix), "--only-summary",
        "--users-population", "5000", "--seed-buyers", "500", "--click-ratio", "0.05",
        *options,
    ]  # fmt: skip
    env = {**os.environ, "RETARGET_ADMIN_TOKEN": ADMIN_TOKEN}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 30
    )


def stats_by_name(csv_prefix: Path) -> dict[str, dict[str, str]]:
    """The rows of locust's ``<prefix>_stats.csv``, by request name (and "Aggregated")."""
    with Path(f"{csv_prefix}_stats.csv").open(newline="") as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def requests_of(stats: dict[str, dict[str, str]], name: str) -> int:
    return int(stats[name]["Request Count"]) if name in stats else 0


def test_the_smoke_run_passes_with_pixels_decisions_impressions_and_clicks(
    service: Service, tmp_path: Path
) -> None:
    run = run_locust(service, tmp_path / "run", SMOKE_SECONDS, "--max-p99-ms", "1000")

    assert run.returncode == 0, f"{run.stderr[-4000:]}\nservice:\n{service.output[-2000:]}"
    stats = stats_by_name(tmp_path / "run")
    assert requests_of(stats, "/px/[pixel].gif") > 0
    assert requests_of(stats, "/v1/decisions") > 0
    assert requests_of(stats, "/t/imp/[token]") > 0, "no decision was filled"
    assert requests_of(stats, "/t/click/[token]") > 0
    assert int(stats["Aggregated"]["Failure Count"]) == 0


def test_a_run_whose_p99_is_over_the_limit_exits_with_1(service: Service, tmp_path: Path) -> None:
    run = run_locust(service, tmp_path / "run", 3, "--max-p99-ms", "0.001", users=4)

    assert run.returncode == 1, run.stderr[-4000:]
    assert "is over --max-p99-ms" in run.stderr


def test_runs_reuse_the_locust_shop_and_replace_its_publishers(
    service: Service, tmp_path: Path
) -> None:
    for attempt in range(2):
        run = run_locust(service, tmp_path / f"run-{attempt}", 2, users=4)
        assert run.returncode == 0, run.stderr[-4000:]

    admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=service.base_url, headers=admin_headers) as admin:
        advertisers = admin.get("/v1/advertisers").json()["advertisers"]
        shops = [a for a in advertisers if a["name"] == "locust shop"]
        campaigns = admin.get("/v1/campaigns", params={"advertiser_id": shops[0]["id"]}).json()
        publishers = admin.get("/v1/publishers").json()["publishers"]

    assert len(shops) == 1
    assert len(campaigns["campaigns"]) == 3
    assert sorted(p["name"] for p in publishers) == LOCUST_PUBLISHERS
