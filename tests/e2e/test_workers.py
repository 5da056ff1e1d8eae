"""``retarget serve`` with two uvicorn workers: a campaign changed through one worker is
served accordingly by every worker within a second (each polls ``{cfg}:version``); a burst of
connections is spread over the workers, and a worker that dies is replaced.

Each worker listens on a socket of its own (retarget.workers), so the kernel decides which
worker accepts a connection. Every decision here goes over a connection of its own, and the
test reads from ``/proc`` which worker process holds the server end of it: which worker
answered is known for every answer, so "every worker" is checked, not just likely.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from uvicorn.config import STARTUP_FAILURE

from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.signing import sign
from retarget.users import new_cookie_id
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Service, children_of, service_env
from tests.helpers import (
    ADMIN,
    create_advertiser,
    create_audience,
    create_campaign,
    create_publisher,
    decide,
)

pytestmark = pytest.mark.e2e

StartService = Callable[[dict[str, str]], Service]

WORKERS = 2
PLACEMENT = "feed"
NO_FILL = "x-retarget-no-fill"
# A worker notices a change at its next poll (RETARGET_CATALOG_REFRESH_SECONDS, 0.5 s by
# default) and rebuilds a catalog this small in milliseconds.
PROPAGATION_SECONDS = 1.0
# Answers of one kind each worker must give in a row before the test believes it switched.
IN_A_ROW = 20
# Connections opened at once, as by a keep-alive pool or a load balancer.
BURST = 64
# How long one worker stays busy while the burst connects.
BUSY_SECONDS = 0.5
# How long to keep asking a worker that does not switch before failing.
GIVE_UP_SECONDS = 5.0
# How often each worker hands its hot-path metrics to the shared files (Metrics.keep_syncing).
METRICS_SYNC_SECONDS = 1.0
# httpx builds a TLS context per client (~35 ms) even for http:// URLs; sharing one keeps
# a new connection per decision cheap, so the answers are dense in time.
_TLS = ssl.create_default_context()


# ---- which worker answered ---------------------------------------------------------------


def _server_socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the established loopback socket from ``server_port`` to ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if (
            state == "01"  # ESTABLISHED
            and int(local.rsplit(":", 1)[1], 16) == server_port
            and int(remote.rsplit(":", 1)[1], 16) == client_port
        ):
            return inode
    return None


@dataclass(frozen=True)
class Workers:
    """One ``retarget serve`` process and the pids of its worker processes."""

    service: Service
    pids: frozenset[int]

    def client(self) -> httpx.AsyncClient:
        """A client of its own: its first request opens a new connection."""
        return httpx.AsyncClient(base_url=self.service.base_url, verify=_TLS, timeout=5)

    def which(self, response: httpx.Response) -> int:
        """The worker that answered ``response``, whose connection must still be open: the
        one whose process holds the server end of that connection."""
        _, client_port = response.extensions["network_stream"].get_extra_info("client_addr")
        return self.holder(client_port)

    def holder(self, client_port: int) -> int:
        """The worker holding the server end of the open connection from ``client_port``."""
        inode = _server_socket_inode(self.service.port, client_port)
        for pid in self.pids:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):  # closed while we looked
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return pid
        raise AssertionError(f"no worker of {sorted(self.pids)} holds the connection")


def connected_workers(redis_url: str, count: int, timeout: float = 30.0) -> frozenset[int]:
    """Pids of the processes connected to Redis: each names its client ``retarget-<pid>``."""
    deadline = time.monotonic() + timeout
    with redis.Redis.from_url(redis_url, socket_timeout=2, decode_responses=True) as client:
        while True:
            names = {c["name"] for c in client.client_list()}
            ours = [n.removeprefix("retarget-") for n in names if n.startswith("retarget-")]
            pids = frozenset(map(int, ours))
            if len(pids) >= count or time.monotonic() > deadline:
                assert len(pids) == count, f"Redis clients: {sorted(names)}"
                return pids
            time.sleep(0.05)


@pytest.fixture
def workers_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """The redis-server the workers share, on a TCP port, as a production Redis would be."""
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def two_workers(
    start_service: StartService, tmp_path: Path, workers_redis: EmbeddedRedis
) -> Iterator[Workers]:
    env = service_env(
        tmp_path,
        redis_url=workers_redis.url,
        workers=str(WORKERS),
        admin_token=ADMIN_TOKEN,
        secret_key="e2e-secret-key",
        # Client and service share a busy machine: a slow answer must not become a
        # "deadline" no-fill, which would look like neither an ad nor a paused campaign.
        decision_deadline_ms="1000",
    )
    service = start_service(env)
    service.wait_ready()
    pids = connected_workers(workers_redis.url, WORKERS)
    assert pids <= set(children_of(service.pid))
    # pidfds name these very processes, so a pid reused after they exit is never signalled.
    pidfds = [os.pidfd_open(pid) for pid in pids]
    try:
        yield Workers(service, pids)
    finally:
        service.reap()
        for pidfd in pidfds:  # a worker that outlived a supervisor reap() had to kill
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)


# ---- arrange and act ---------------------------------------------------------------------


@dataclass(frozen=True)
class Retargeting:
    """A campaign aimed at one book buyer, and the publisher key that asks for ads."""

    campaign_id: str
    api_key: str
    buyer: str


async def buy_a_book(client: httpx.AsyncClient, advertiser: dict[str, Any]) -> str:
    """A purchase sent by the shop's backend (a signed ``POST /v1/events``); its rt_uid."""
    uid, now = new_cookie_id(), int(time.time())
    event = {"event_id": "order-1", "ts": now, "user": {"cookie": uid}}
    body = orjson.dumps({"events": [event | {"product_name": "Dune", "category": "books"}]})
    response = await client.post(
        "/v1/events",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Retarget-Advertiser": advertiser["id"],
            "X-Retarget-Signature": sign(advertiser["s2s_secret"], body, now),
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1, response.text
    return uid


async def retarget_a_buyer(workers: Workers) -> Retargeting:
    """A shop, its book buyers' audience, a social site and an active campaign, then one
    buyer. All over one kept-alive connection, hence one worker, whose catalog each write
    reloads: the purchase is recorded by a worker that already knows the audience."""
    async with workers.client() as admin:
        advertiser = await create_advertiser(admin)
        audience = await create_audience(
            admin, advertiser["id"], name="book buyers", categories=["books"]
        )
        publisher = await create_publisher(
            admin,
            name="Friends",
            domain="friends.example.net",
            site_category="social",
            placements=[{"id": PLACEMENT, "format": "banner", "sizes": [[300, 250]]}],
        )
        campaign = await create_campaign(
            admin,
            advertiser["id"],
            [audience["id"]],
            frequency_caps=[{"impressions": 1_000_000, "seconds": 86_400}],
        )
        buyer = await buy_a_book(admin, advertiser)
    return Retargeting(campaign["id"], publisher["api_key"], buyer)


async def set_status(workers: Workers, campaign_id: str, status: str) -> tuple[int, float]:
    """PATCH the campaign's status over a new connection; the worker that took it, and
    the moment its answer arrived."""
    async with workers.client() as client:
        response = await client.patch(
            f"/v1/campaigns/{campaign_id}", json={"status": status}, headers=ADMIN
        )
        answered_at = time.monotonic()
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        return workers.which(response), answered_at


@dataclass(frozen=True)
class Answer:
    """One decision for the buyer, as the test saw it."""

    worker: int
    sent_after: float  # seconds from the reference moment to sending the request
    status: int
    campaign_id: str | None  # of the ad; None: no ad
    no_fill: str | None

    def __str__(self) -> str:
        outcome = self.campaign_id or f"{self.status}, no ad ({self.no_fill})"
        return f"{self.sent_after:6.3f}s worker {self.worker}: {outcome}"


async def ask(workers: Workers, retargeting: Retargeting, since: float) -> Answer:
    """One decision for the buyer, over a new connection (the kernel picks the worker)."""
    sent = time.monotonic()
    async with workers.client() as client:
        response = await decide(client, retargeting.api_key, retargeting.buyer, (PLACEMENT,))
        worker = workers.which(response)
    # Until a worker's catalog has caught up with a new publisher, its key is unknown there.
    ad = response.json()["decisions"][PLACEMENT] if response.status_code == 200 else None
    return Answer(
        worker=worker,
        sent_after=sent - since,
        status=response.status_code,
        campaign_id=ad["campaign_id"] if ad else None,
        no_fill=response.headers.get(NO_FILL),
    )


async def ask_until_every_worker(
    workers: Workers,
    retargeting: Retargeting,
    expected: Callable[[Answer], bool],
    since: float,
    in_a_row: int = IN_A_ROW,
) -> list[Answer]:
    """Ask, one new connection per decision, until every worker has answered as
    ``expected`` ``in_a_row`` times in a row, or ``GIVE_UP_SECONDS`` after ``since``."""
    answers: list[Answer] = []
    streaks = dict.fromkeys(workers.pids, 0)
    while min(streaks.values()) < in_a_row and time.monotonic() - since < GIVE_UP_SECONDS:
        answer = await ask(workers, retargeting, since)
        answers.append(answer)
        streaks[answer.worker] = streaks[answer.worker] + 1 if expected(answer) else 0
    return answers


def no_candidate(answer: Answer) -> bool:
    return answer.status == 200 and answer.campaign_id is None and answer.no_fill == "no_candidate"


def ad_of(campaign_id: str) -> Callable[[Answer], bool]:
    return lambda answer: answer.campaign_id == campaign_id


def switched(answers: list[Answer], expected: Callable[[Answer], bool], in_a_row: int) -> set[int]:
    """The workers whose last ``in_a_row`` answers were all as expected."""
    by_worker: dict[int, list[Answer]] = {}
    for answer in answers:
        by_worker.setdefault(answer.worker, []).append(answer)
    return {
        worker
        for worker, theirs in by_worker.items()
        if len(theirs) >= in_a_row and all(map(expected, theirs[-in_a_row:]))
    }


def timeline(answers: list[Answer], changed_through: int) -> str:
    return f"changed through worker {changed_through}; answers:\n" + "\n".join(map(str, answers))


async def until_every_worker_has_answered(
    workers: Workers, retargeting: Retargeting, expected: Callable[[Answer], bool]
) -> None:
    """Arrange: ask until each worker has answered as ``expected`` (once is enough)."""
    answers = await ask_until_every_worker(
        workers, retargeting, expected, time.monotonic(), in_a_row=1
    )
    assert switched(answers, expected, 1) == workers.pids, "\n".join(map(str, answers))


# ---- the tests ---------------------------------------------------------------------------


async def test_a_campaign_paused_through_one_worker_gets_no_ad_from_any_worker_within_1s(
    two_workers: Workers,
) -> None:
    retargeting = await retarget_a_buyer(two_workers)
    serves = ad_of(retargeting.campaign_id)
    await until_every_worker_has_answered(two_workers, retargeting, serves)

    paused_through, paused_at = await set_status(two_workers, retargeting.campaign_id, "paused")
    answers = await ask_until_every_worker(two_workers, retargeting, no_candidate, paused_at)

    story = timeline(answers, paused_through)
    late = [a for a in answers if a.sent_after >= PROPAGATION_SECONDS and not no_candidate(a)]
    assert not late, story
    assert switched(answers, no_candidate, IN_A_ROW) == two_workers.pids, story


async def test_a_campaign_resumed_through_one_worker_gets_ads_from_every_worker_within_1s(
    two_workers: Workers,
) -> None:
    retargeting = await retarget_a_buyer(two_workers)
    serves = ad_of(retargeting.campaign_id)
    await until_every_worker_has_answered(two_workers, retargeting, serves)
    await set_status(two_workers, retargeting.campaign_id, "paused")
    await until_every_worker_has_answered(two_workers, retargeting, no_candidate)

    resumed_through, resumed_at = await set_status(two_workers, retargeting.campaign_id, "active")
    answers = await ask_until_every_worker(two_workers, retargeting, serves, resumed_at)

    story = timeline(answers, resumed_through)
    late = [a for a in answers if a.sent_after >= PROPAGATION_SECONDS and not serves(a)]
    assert not late, story
    assert switched(answers, serves, IN_A_ROW) == two_workers.pids, story


async def test_metrics_scraped_from_any_worker_count_every_workers_decisions(
    two_workers: Workers,
) -> None:
    retargeting = await retarget_a_buyer(two_workers)
    serves = ad_of(retargeting.campaign_id)
    answers = await ask_until_every_worker(
        two_workers, retargeting, serves, time.monotonic(), in_a_row=3
    )
    assert switched(answers, serves, 3) == two_workers.pids, "\n".join(map(str, answers))
    filled = sum(map(serves, answers))

    # One kept-alive connection, so one worker answers every scrape: the other worker's
    # decisions reach it only through the files each worker writes once a second.
    deadline = time.monotonic() + 3 * METRICS_SYNC_SECONDS
    async with two_workers.client() as client:
        while True:
            counted = fills(await client.get("/metrics"))
            if counted == filled or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)

    assert counted == filled


def fills(response: httpx.Response) -> float:
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "retarget_decisions_total" and sample.labels == {"outcome": "fill"}:
                return sample.value
    return 0.0


def test_connections_opened_at_once_are_spread_over_the_workers(two_workers: Workers) -> None:
    """A burst of connections (a keep-alive pool opening, a load balancer starting) must not
    all stay with whichever worker was free to accept them: here one worker is busy (frozen)
    for half a second while the burst connects, and still gets its share once it goes on."""
    address = ("127.0.0.1", two_workers.service.port)
    busy = min(two_workers.pids)
    os.kill(busy, signal.SIGSTOP)
    try:
        connections = [socket.create_connection(address, timeout=5) for _ in range(BURST)]
        time.sleep(BUSY_SECONDS)
    finally:
        os.kill(busy, signal.SIGCONT)
    try:
        for connection in connections:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: retarget\r\n\r\n")
        for connection in connections:
            assert connection.recv(64).startswith(b"HTTP/1.1 200 ")  # accepted, answered
        served = [two_workers.holder(c.getsockname()[1]) for c in connections]
    finally:
        for connection in connections:
            connection.close()

    shares = {pid: served.count(pid) for pid in two_workers.pids}
    # Spread by a hash of the client's port: a worker gets fewer than a quarter of 64
    # connections about once in 30,000 bursts.
    assert min(shares.values()) >= BURST // 4, shares


async def test_a_worker_that_dies_is_replaced_and_the_port_keeps_answering(
    two_workers: Workers, workers_redis: EmbeddedRedis
) -> None:
    killed = min(two_workers.pids)
    os.kill(killed, signal.SIGKILL)

    # Connections hashed to the dead worker's socket wait there for its replacement.
    clients = [two_workers.client() for _ in range(BURST // 2)]
    try:
        async with asyncio.timeout(30):
            answers = await asyncio.gather(*(client.get("/healthz") for client in clients))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))

    assert {answer.status_code for answer in answers} == {200}
    now_serving = await asyncio.to_thread(connected_workers, workers_redis.url, WORKERS)
    assert killed not in now_serving
    assert now_serving <= set(children_of(two_workers.service.pid))


def test_a_worker_that_fails_to_start_stops_the_service_instead_of_restarting_forever(
    tmp_path: Path,
) -> None:
    (tmp_path / "broken.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] == 'lifespan':\n"
        "        await receive()\n"
        "        await send({'type': 'lifespan.startup.failed', 'message': 'no database'})\n"
    )
    command = [sys.executable, "-m", "retarget.workers", "broken:app", "--workers", "2"]
    ran = subprocess.run(
        [*command, "--port", str(free_port())],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        timeout=60,
    )
    assert ran.returncode == STARTUP_FAILURE, ran.stderr.decode()
