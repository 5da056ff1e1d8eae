"""End-to-end harness: ``python -m retarget serve`` as a real process, always reaped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from retarget.embedded_redis import free_port

READY_TIMEOUT = 60.0
EXIT_TIMEOUT = 15.0
_EMBEDDED_LINE = re.compile(r"embedded redis-server \(pid (\d+)\) at (\S+)")


def service_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The parent's environment minus every ``RETARGET_*`` variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETARGET_")}
    env["RETARGET_DATA_DIR"] = str(data_dir)
    env.update({f"RETARGET_{name.upper()}": value for name, value in settings.items()})
    return env


def run_serve(env: dict[str, str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``retarget serve`` to completion (for settings it must refuse)."""
    return subprocess.run(
        [sys.executable, "-m", "retarget", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def children_of(pid: int) -> list[int]:
    """Pids of the direct children of ``pid``, from every one of its threads."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended while we looked
    return found


def is_running_redis(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) redis-server."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and b"redis-server" in command


class Service:
    """One ``retarget serve`` process on a free port, its stderr kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "retarget", "serve"],
                env={**env, "RETARGET_PORT": str(self.port)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def readyz(self, timeout: float = 2.0) -> httpx.Response:
        return httpx.get(f"{self.base_url}/readyz", timeout=timeout)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``/readyz`` until it answers 200; fail with the service's output if it won't."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"service exited with {self.process.returncode}:\n{self.output}")
            try:
                if self.readyz(timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        pytest.fail(f"/readyz did not answer 200 within {timeout}s:\n{self.output}")

    def embedded_redis(self) -> tuple[int, str]:
        """The pid and URL of the embedded redis-server, as the service printed them."""
        match = _EMBEDDED_LINE.search(self.output)
        assert match, f"no embedded redis-server line in:\n{self.output}"
        return int(match[1]), match[2]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = EXIT_TIMEOUT) -> int:
        """Send ``signum`` and wait for the exit; return the exit status."""
        self.process.send_signal(signum)
        return self.process.wait(timeout)

    def reap(self) -> None:
        """Whatever happened in the test, leave no service and no redis-server behind."""
        redis_pids = [pid for pid in children_of(self.pid) if is_running_redis(pid)]
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in redis_pids:
            if is_running_redis(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Service]]:
    """Start services with a given environment; every one is reaped at teardown."""
    started: list[Service] = []

    def start(env: dict[str, str]) -> Service:
        service = Service(env, tmp_path / f"service-{len(started)}.log")
        started.append(service)
        return service

    yield start
    for service in started:
        service.reap()
