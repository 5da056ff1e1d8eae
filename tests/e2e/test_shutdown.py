"""SIGTERM while requests are in flight: ``retarget serve`` answers every request it has
read, then exits, stopping its embedded redis-server last.

To have requests certainly in flight at the signal, the test freezes the embedded
redis-server (SIGSTOP): each pixel hit then waits on its one Redis round trip. It fires the
burst, watches ``/proc/net/tcp`` until the service has read every byte of every request,
sends SIGTERM, keeps Redis frozen a second into uvicorn's drain, then lets it go on
(SIGCONT).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Service, children_of, is_running_redis, service_env
from tests.e2e.test_workers import Workers, connected_workers
from tests.helpers import create_advertiser, create_audience

pytestmark = pytest.mark.e2e

StartService = Callable[[dict[str, str]], Service]

BURST = 200
GRACE_SECONDS = 10.0
# How long Redis stays frozen once uvicorn waits for connections to close.
HOLD_SECONDS = 1.0
# Longer than Redis stays frozen, so a pixel hit waits for Redis instead of failing (and,
# as its deadline, instead of being spooled at once): the requests are still in flight when
# SIGTERM comes.
REDIS_TIMEOUT_SECONDS = "5"
SECRET_KEY = "e2e-secret-key"


# ---- what the service said ---------------------------------------------------------------


def json_lines(output: str) -> list[dict[str, Any]]:
    """The structured log lines of the service's output (the rest is for humans)."""
    return [orjson.loads(line) for line in output.splitlines() if line.startswith("{")]


def worker_pids_from(output: str) -> set[int]:
    """The pids of the processes that said they started serving."""
    prefix = "Started server process ["
    return {
        int(entry["message"].removeprefix(prefix).rstrip("]"))
        for entry in json_lines(output)
        if entry["message"].startswith(prefix)
    }


def position(output: str, wanted: Callable[[str], bool]) -> int:
    """The index of the first line of ``output`` that is ``wanted``."""
    for index, line in enumerate(output.splitlines()):
        if wanted(line):
            return index
    raise AssertionError(f"no such line in:\n{output}")


def said(message: str) -> Callable[[str], bool]:
    """Matches the JSON log line whose message starts with ``message``."""
    return lambda line: line.startswith("{") and orjson.loads(line)["message"].startswith(message)


def wait_for_lines(service: Service, message: str, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(map(said(message), service.output.splitlines())) < count:
        assert time.monotonic() < deadline, f"fewer than {count} {message!r}:\n{service.output}"
        time.sleep(0.01)


# ---- what the kernel says ----------------------------------------------------------------


def unread_bytes(server_port: int) -> list[int]:
    """Bytes waiting to be read, per established connection to ``server_port`` (server side,
    including connections the service has not accepted yet)."""
    waiting = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, queues = fields[1], fields[3], fields[4]
        if state == "01" and int(local.rsplit(":", 1)[1], 16) == server_port:
            waiting.append(int(queues.split(":")[1], 16))
    return waiting


def wait_until_every_request_is_read(
    service: Service, requests: int, timeout: float = 10.0
) -> None:
    """Until ``requests`` connections to the service are established and none of them holds
    a byte the service has not read: the service has accepted every request."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = unread_bytes(service.port)
        if len(waiting) >= requests and not any(waiting):
            return
        assert time.monotonic() < deadline, f"requests still unread: {waiting}"
        time.sleep(0.01)


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """SIGSTOP the process for the block; SIGCONT it whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# ---- arrange -----------------------------------------------------------------------------


def shutdown_env(tmp_path: Path, workers: int) -> dict[str, str]:
    return service_env(
        tmp_path,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        workers=str(workers),
        graceful_shutdown_seconds=str(GRACE_SECONDS),
        redis_connect_timeout=REDIS_TIMEOUT_SECONDS,
        redis_socket_timeout=REDIS_TIMEOUT_SECONDS,
        pixel_deadline_ms=str(int(float(REDIS_TIMEOUT_SECONDS) * 1000)),
    )


async def book_shop_pixel(service: Service, worker_pids: frozenset[int]) -> str:
    """A shop with a book buyers' audience; its pixel id, once every worker records its hits
    (a worker that did not take the write learns of it at its next catalog poll)."""
    workers = Workers(service, worker_pids)
    async with workers.client() as admin:
        advertiser = await create_advertiser(admin)
        await create_audience(admin, advertiser["id"], name="book buyers", categories=["books"])
    recording: set[int] = set()
    deadline = time.monotonic() + 10
    while recording != worker_pids:
        assert time.monotonic() < deadline, f"only workers {recording} know the pixel"
        async with workers.client() as client:
            response = await client.get(f"/px/{advertiser['pixel_id']}.gif")
            if response.status_code == 200:
                recording.add(workers.which(response))
    return str(advertiser["pixel_id"])


def worker_pids(service: Service, workers: int) -> frozenset[int]:
    """The processes that serve requests: the service itself, or its uvicorn workers."""
    if workers == 1:
        return frozenset({service.pid})
    _, redis_url = service.embedded_redis()
    pids = connected_workers(redis_url, workers)
    assert pids <= set(children_of(service.pid))
    return pids


# ---- act ---------------------------------------------------------------------------------


class Burst:
    """``BURST`` pixel hits, all at once, each over a connection of its own."""

    def __init__(self, base_url: str, pixel_id: str) -> None:
        self.base_url = base_url
        self.pixel_id = pixel_id
        self.sent = 0  # requests written to the socket, to the last byte
        self.tasks: list[asyncio.Task[httpx.Response]] = []

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "http11.send_request_body.complete":
            self.sent += 1

    async def fire(self, stack: contextlib.AsyncExitStack) -> None:
        # Several clients: one httpx pool slows down with the square of its waiting requests.
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=self.base_url,
                    timeout=GRACE_SECONDS + 5,
                    limits=httpx.Limits(max_connections=50, max_keepalive_connections=0),
                )
            )
            for _ in range(BURST // 50)
        ]
        self.tasks = [
            asyncio.create_task(
                clients[i % len(clients)].get(
                    f"/px/{self.pixel_id}.gif",
                    params={"ev": "purchase", "oid": f"order-{i}", "pn": "Dune", "cat": "books"},
                    extensions={"trace": self._trace},
                )
            )
            for i in range(BURST)
        ]
        deadline = time.monotonic() + 10
        while self.sent < BURST:
            assert time.monotonic() < deadline, f"only {self.sent} of {BURST} requests sent"
            await asyncio.sleep(0.01)

    async def answers(self) -> list[httpx.Response | BaseException]:
        return await asyncio.gather(*self.tasks, return_exceptions=True)


# ---- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
async def test_sigterm_during_a_burst_answers_every_request_read_then_stops_redis_last(
    start_service: StartService, tmp_path: Path, workers: int
) -> None:
    service = start_service(shutdown_env(tmp_path, workers))
    service.wait_ready()
    redis_pid, _ = service.embedded_redis()
    pixel_id = await book_shop_pixel(service, worker_pids(service, workers))
    burst = Burst(service.base_url, pixel_id)

    async with contextlib.AsyncExitStack() as clients:
        with frozen(redis_pid):
            await burst.fire(clients)
            await asyncio.to_thread(wait_until_every_request_is_read, service, BURST)
            signalled = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(wait_for_lines, service, "Shutting down", workers)
            await asyncio.to_thread(wait_for_lines, service, "Waiting for connections", 1)
            # Answered because the service waits for them, not because they were quick.
            await asyncio.sleep(HOLD_SECONDS)
            assert service.process.poll() is None, "exited with requests in flight"
        answers = await burst.answers()
    status = await asyncio.to_thread(service.process.wait, GRACE_SECONDS + 5)
    stopped_after = time.monotonic() - signalled

    failed = [repr(a) for a in answers if isinstance(a, BaseException)]
    assert not failed, f"{len(failed)} of {BURST} requests had no answer: {failed[:5]}"
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    assert [r.status_code for r in responses] == [200] * BURST
    assert all(r.headers["content-type"] == "image/gif" for r in responses)
    assert [r.headers.get("x-retarget-error") for r in responses] == [None] * BURST
    assert status in (0, 128 + signal.SIGTERM)
    assert stopped_after < GRACE_SECONDS
    assert not is_running_redis(redis_pid)

    output = service.output
    drained = position(output, said("Waiting for connections to close"))
    served = max(
        position(output, said(f"Finished server process [{pid}]"))
        for pid in worker_pids_from(output)
    )
    redis_stopped = position(output, lambda line: "embedded redis-server stopped" in line)
    assert drained < served < redis_stopped < position(output, said("stopped"))


async def test_two_workers_both_answer_readyz_and_stop_cleanly_on_sigterm(
    start_service: StartService, tmp_path: Path
) -> None:
    service = start_service(shutdown_env(tmp_path, workers=2))
    service.wait_ready()
    redis_pid, _ = service.embedded_redis()
    workers = Workers(service, worker_pids(service, workers=2))
    pidfds = {pid: os.pidfd_open(pid) for pid in workers.pids}

    answered: set[int] = set()
    deadline = time.monotonic() + 10
    while answered != workers.pids:
        assert time.monotonic() < deadline, f"only workers {answered} answered /readyz"
        async with workers.client() as client:
            response = await client.get("/readyz")
            assert response.status_code == 200, response.text
            answered.add(workers.which(response))

    try:
        started = time.monotonic()
        status = await asyncio.to_thread(service.stop, signal.SIGTERM)
        stopped_after = time.monotonic() - started

        assert status in (0, 128 + signal.SIGTERM)
        assert stopped_after < GRACE_SECONDS
        for pidfd in pidfds.values():
            with pytest.raises(ProcessLookupError):  # the worker has exited and been reaped
                signal.pidfd_send_signal(pidfd, 0)
        assert not is_running_redis(redis_pid)
        # Each worker logged through the same JSON configuration, and finished before Redis.
        output = service.output
        assert worker_pids_from(output) == workers.pids
        redis_stopped = position(output, lambda line: "embedded redis-server stopped" in line)
        for pid in workers.pids:
            assert position(output, said(f"Finished server process [{pid}]")) < redis_stopped
    finally:
        for pidfd in pidfds.values():
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)


async def test_the_service_says_starting_and_stopped_in_one_json_line_each(
    start_service: StartService, tmp_path: Path
) -> None:
    service = start_service(shutdown_env(tmp_path, workers=1))
    service.wait_ready()
    await asyncio.to_thread(service.stop, signal.SIGTERM)

    lines = json_lines(service.output)
    starting = [line for line in lines if line["message"] == "starting"]
    stopped = [line for line in lines if line["message"] == "stopped"]
    assert len(starting) == 1
    assert len(stopped) == 1
    assert starting[0]["logger"] == "retarget"
    assert starting[0]["level"] == "INFO"
    assert (starting[0]["port"], starting[0]["workers"]) == (service.port, 1)
    assert starting[0]["redis"] == "embedded"
    assert lines[-1] == stopped[0]
    for secret in (ADMIN_TOKEN, SECRET_KEY):
        assert secret not in service.output
