"""``retarget serve --demo`` (what ``make run`` runs) and ``retarget demo``, as processes."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from retarget import demo
from retarget.embedded_redis import free_port
from tests.e2e.conftest import READY_TIMEOUT, service_env

pytestmark = pytest.mark.e2e
_KEY_LINE = re.compile(r"demo dashboard key \(sign in at (\S+)/dashboard\): (\S+)")


def wait_for_line(
    log: Path, pattern: re.Pattern[str], process: subprocess.Popen[bytes]
) -> re.Match[str]:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        found = pattern.search(log.read_text(errors="replace"))
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    pytest.fail(f"no {pattern.pattern!r} within {READY_TIMEOUT}s:\n{log.read_text()}")


def test_serve_with_demo_seeds_it_and_seeding_again_reuses_everything(tmp_path: Path) -> None:
    port = free_port()
    env = {**service_env(tmp_path, log_format="text"), "RETARGET_PORT": str(port)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "retarget", "serve", "--demo"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        first = wait_for_line(log, _KEY_LINE, serve)
        base_url, key = first[1], first[2]
        assert base_url == f"http://localhost:{port}"  # the host browsers keep Secure cookies on
        assert f"{base_url}/demo/shop" in log.read_text()

        again = subprocess.run(
            [sys.executable, "-m", "retarget", "demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        second = _KEY_LINE.search(again.stderr)
        assert second is not None
        assert second[2] == key  # the same dashboard key: no new key on every run

        admin = {"Authorization": f"Bearer {_admin_token(tmp_path)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=admin) as api:
            shops = api.get("/v1/advertisers").json()["advertisers"]
            assert [a["name"] for a in shops] == [demo.SHOP_NAME]
            campaigns = api.get("/v1/campaigns").json()["campaigns"]
            assert [c["name"] for c in campaigns] == [demo.CAMPAIGN_NAME]
            names = sorted(p["name"] for p in api.get("/v1/publishers").json()["publishers"])
            assert names == sorted(p.name for p in demo.PUBLISHERS)
            assert api.get("/demo/shop").status_code == 200
    finally:
        serve.terminate()
        try:
            serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()


def _admin_token(data_dir: Path) -> str:
    return orjson.loads((data_dir / "secrets.json").read_bytes())["admin_token"]
