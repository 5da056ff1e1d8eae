"""Scaling curves: does a decision slow down with more users or more campaigns, and what
does a user cost in Redis memory?

    .venv/bin/python loadtests/bench.py scaling                  # print the tables
    .venv/bin/python loadtests/bench.py scaling --markdown docs/benchmarks.md

Each *state* gets its own redis-server (the one the service embeds) and its own one-worker
``retarget serve``; the baseline is the fewest users with the fewest campaigns, every other
state changes one of the two (default: 10,000 vs 1,000,000 users; 10 vs 1,000 vs 10,000
campaigns). ``docs/benchmarks.md`` describes the method and the results.

- **Configuration**: ``catalog_bench.make_snapshot`` (100 advertisers, 200 publishers,
  campaigns in groups of 10 over 5 audiences, ~80 % serving), written with the service's own
  ``ConfigStore.write``; every campaign started within the last 60 days. Every catalog holds
  the measured users' group identically: a bigger catalog adds other advertisers'
  campaigns, not campaigns per audience (as in ``catalog_bench.py``).
- **Users**: cookie users who each bought from the first advertiser and joined 2 of its
  group's 5 audiences, written as ``record_event.lua`` would write a new buyer
  (``FreshUsers``: four plain commands per user, pipelined).
- **Memory per user**: growth of ``INFO memory`` used_memory while the users are loaded,
  divided by the users.
- **Decisions**: every state is driven by the same wrk, interleaved, round after round:
  closed loop (maximum throughput) and paced at a fixed rate under the maximum (the latency
  of a decision that does not queue), each from the loaded state (``forget_serving``);
  outcomes from the service's ``/metrics``. Ratios to the baseline are taken within each
  round, so a busy moment on the machine moves both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import itertools
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
from bench import (
    Result,
    add_redis_server_option,
    machine,
    measure,
    process,
    production_redis_server,
    redis_build,
    require_wrk,
    spread,
    without_aof_rewrites,
    wrk,
)
from catalog_bench import Group, advertiser, group_audience_ids, make_snapshot
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from retarget.audiences import DAY, Membership
from retarget.embedded_redis import EmbeddedRedis, free_port
from retarget.events import Event, EventType
from retarget.settings import Settings
from retarget.store import keys
from retarget.store.config import ConfigStore
from retarget.store.users import Recording, UserStore
from retarget.users import Namespace, UserRef

ROOT = Path(__file__).resolve().parent.parent
GROUP = Group(campaigns=10, audiences=5)
BATCH = 1_000
ADMIN = "scaling-admin-token"
# The services run with the default.
COUNTERS_FLUSH_SECONDS = Settings.model_fields["counters_flush_seconds"].default


@dataclass(frozen=True)
class State:
    users: int
    campaigns: int

    @property
    def name(self) -> str:
        return f"{short(self.users)} users, {short(self.campaigns)} campaigns"


def short(number: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if number >= size and number % size == 0:
            return f"{number // size}{suffix}"
    return f"{number:,}"


@dataclass
class Loaded:
    """What loading one state took and cost."""

    user_ids: list[str]
    seconds: float
    memory_before: int
    memory_after: int
    keys: int

    @property
    def bytes_per_user(self) -> float:
        return (self.memory_after - self.memory_before) / max(1, len(self.user_ids))


def cookie_ids(count: int, rng: random.Random) -> list[str]:
    """``count`` ids shaped like ``new_cookie_id()``'s (22 URL-safe characters), from ``rng``."""
    return [base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode() for _ in range(count)]


def buyer(user_id: str, number: int, now: float) -> Recording:
    """Buyer ``number``: a cookie user who bought from advertiser 0 ten days ago and so joined
    2 of its group's 5 audiences (past every audience's delay, 30 days still to run)."""
    since = int(now) - 10 * DAY
    event = Event(
        advertiser_id=advertiser(0).id,
        type=EventType.PURCHASE,
        ts=since,
        sku=f"SKU-{number * 7919 % 10**6:06d}",
        category="books",
        value=round(5 + number * 31 % 20_000 / 100, 2),
        currency="EUR",
        dedup_id=order_id(number),
    )
    audiences = AUDIENCE_PAIRS[number % len(AUDIENCE_PAIRS)]
    memberships = [Membership(a, since, since + 40 * DAY) for a in audiences]
    return Recording(UserRef(Namespace.COOKIE, user_id), event, memberships)


def order_id(number: int) -> str:
    return f"order-{number:010d}"


AUDIENCE_PAIRS = list(itertools.combinations(group_audience_ids(0, GROUP), 2))


def user_store(redis: AsyncRedis) -> UserStore:
    """The store ``POST /v1/events`` writes through, with the default settings."""
    defaults = Settings()
    window = defaults.dedup_window_days * DAY
    return UserStore(
        redis,
        max_fields=defaults.max_memberships_per_user,
        dedup_window_seconds=window,
        keep_seconds=window,
    )


def _bulk(value: object) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


class FreshUsers:
    """RESP commands that leave a new user's keys exactly as ``record_event.lua`` leaves
    them after its first event (``tests/test_loadtests.py`` checks that they match).

    For a user the script has never seen, its work reduces to four plain writes: ZADD the
    order id, EXPIRE the seen set, HSET the memberships and the purchase, EXPIRE the profile.
    The arguments come from the service's own ``UserStore`` for one buyer per audience pair;
    only the user's keys (from ``keys.py``) and order id change from user to user. That costs
    Redis about a fifth of an EVALSHA and Python a few microseconds per user, so a million
    users load in seconds rather than minutes."""

    def __init__(self, store: UserStore, now: float) -> None:
        self._templates = []
        for number in range(len(AUDIENCE_PAIRS)):
            recording = buyer("template", number, now)
            _, argv = store._args(recording, now)  # the script's exact arguments
            # The last-click and last-view fields are only read (attribution): a new user has none.
            now_s, _, window, _, purchase_field, purchase, keep, _, _, *triples = argv
            fields: list[object] = []
            keep_until = now_s + keep
            for i in range(0, len(triples), 3):
                field_name, since, expires = triples[i : i + 3]
                fields += [field_name, f"{since}:{expires}"]
                keep_until = max(keep_until, expires)
            if purchase_field:
                fields += [purchase_field, purchase]
            self._templates.append(
                (
                    b"*4\r\n$4\r\nZADD\r\n",
                    _bulk(now_s),
                    b"*3\r\n$6\r\nEXPIRE\r\n",
                    _bulk(window),
                    b"*%d\r\n$4\r\nHSET\r\n" % (2 + len(fields)),
                    b"".join(_bulk(f) for f in fields),
                    _bulk(keep_until - now_s),
                    recording.event.advertiser_id,
                )
            )
        self.replies_per_user = 4

    def commands(self, user_id: str, number: int) -> bytes:
        zadd, now_s, expire, window, hset, fields, keep, owner = self._templates[
            number % len(self._templates)
        ]
        user = UserRef(Namespace.COOKIE, user_id)
        profile, seen = _bulk(keys.user_profile(user)), _bulk(keys.user_seen_events(user))
        member = _bulk(f"{owner}:{order_id(number)}")
        return b"".join(
            (zadd, seen, now_s, member, expire, seen, window, hset, profile, fields, expire,
             profile, keep)
        )  # fmt: skip


def open_socket(url: str) -> socket.socket:
    parsed = urlsplit(url)
    if parsed.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(parsed.path)
    else:
        sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379))
    return sock


def read_replies(sock: socket.socket, count: int, pending: bytearray) -> None:
    """Read ``count`` integer replies; an error reply stops the load."""
    while pending.count(b"\r\n") < count:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("redis-server closed the connection")
        pending += chunk
    lines = pending.split(b"\r\n", count)
    if error := next((line for line in lines[:count] if not line.startswith(b":")), None):
        raise SystemExit(f"redis-server refused a write: {error[:200]!r}")
    pending[:] = lines[count] if len(lines) > count else b""


def redis_address(redis: AsyncRedis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"


async def load_users(redis: AsyncRedis, count: int, now: float, seed: int = 7) -> Loaded:
    """Write ``count`` buyers (``FreshUsers``) in pipelines of 1,000 users, the next batch
    sent before the previous one's replies are read; measure used_memory."""
    fresh = FreshUsers(user_store(redis), now)
    ids = cookie_ids(count, random.Random(seed))
    keys_before = await redis.dbsize()
    before = (await redis.info("memory"))["used_memory"]
    started = time.perf_counter()
    with open_socket(redis_address(redis)) as sock:
        pending, in_flight = bytearray(), 0
        for first in range(0, count, BATCH):
            numbers = range(first, min(count, first + BATCH))
            sock.sendall(b"".join(fresh.commands(ids[n], n) for n in numbers))
            if in_flight:
                read_replies(sock, in_flight, pending)
            in_flight = len(numbers) * fresh.replies_per_user
        read_replies(sock, in_flight, pending)
    seconds = time.perf_counter() - started
    after = (await redis.info("memory"))["used_memory"]
    loaded = await redis.dbsize() - keys_before
    if loaded != 2 * count:
        raise SystemExit(f"{count:,} new users should make {2 * count:,} keys, not {loaded:,}")
    return Loaded(ids, seconds, before, after, loaded)


async def load_catalog(redis: AsyncRedis, campaigns: int, now: float) -> None:
    """The generated configuration, written as one change through ``ConfigStore``."""
    created = datetime.fromtimestamp(now - 60 * DAY, UTC)
    snapshot = make_snapshot(campaigns, GROUP, created=created)
    await ConfigStore(redis).write(
        put={family: dict(items) for family, items in snapshot.families.items()}  # type: ignore[misc]
    )


async def load_state(url: str, state: State, now: float) -> Loaded:
    redis = AsyncRedis.from_url(url)
    try:
        await load_catalog(redis, state.campaigns, now)
        return await load_users(redis, state.users, now)
    finally:
        await redis.aclose()


@functools.cache
def publisher_placement(index: int) -> tuple[str, str, str]:
    """(API key, domain, first placement id) of generated publisher ``index``: the same in
    every catalog size."""
    snapshot = make_snapshot(GROUP.campaigns, GROUP)
    publisher = orjson.loads(snapshot.families[keys.PUBLISHERS][f"pub_{index:012x}"])
    return publisher["id"], publisher["domain"], publisher["placements"][0]["id"]


def wait_for_catalog(base: str, key: str, timeout: float = 120) -> None:
    """Wait until the service knows the publisher key (its catalog has loaded)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=10) as client:
        while time.monotonic() < deadline:
            answer = client.post(
                "/v1/decisions",
                headers={"Authorization": f"Bearer {key}"},
                json={"user": {"id": "nobody", "namespace": "cookie"}, "placements": [{"id": "x"}]},
            )
            if answer.status_code != 401:
                return
            time.sleep(0.5)
    raise SystemExit(f"{base} did not load its catalog within {timeout:g} s")


def fill_rate(base: str, key: str, domain: str, placement: str, users: Sequence[str]) -> float:
    """Share of decisions for ``users`` that got an ad (each user asked once)."""
    filled = 0
    with httpx.Client(base_url=base, timeout=10) as client:
        for user_id in users:
            response = client.post(
                "/v1/decisions",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "user": {"id": user_id, "namespace": "cookie"},
                    "site": {"domain": domain},
                    "placements": [{"id": placement}],
                },
            )
            response.raise_for_status()
            filled += response.json()["decisions"][placement] is not None
    return filled / max(1, len(users))


def decision_outcomes(base: str) -> dict[str, float]:
    """The service's ``retarget_decisions_total`` by outcome (``fill`` or a no-fill reason)."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    outcomes = {}
    for line in text.splitlines():
        if line.startswith('retarget_decisions_total{outcome="'):
            labels, value = line.rsplit(" ", 1)
            outcomes[labels.split('"')[1]] = float(value)
    return outcomes


def forget_serving(redis: Redis) -> None:
    """Back to the loaded state before a run: drop what serving wrote that changes later
    decisions (the users' frequency hashes, the campaigns' budget spend), then wait out two
    of the service's counter flushes, which read the spend back. Without it, each closed
    loop caps the users and spends the budgets within seconds (10,000 users at 15,000
    decisions/s), and every later run measures no-fills: 0 % filled at 20/s."""
    for pattern in ("{u:*}:f", "{spend}:*"):
        batch: list[bytes] = []
        for key in redis.scan_iter(match=pattern, count=10_000):
            batch.append(key)
            if len(batch) == 10_000:
                redis.unlink(*batch)
                batch = []
        if batch:
            redis.unlink(*batch)
    time.sleep(2 * COUNTERS_FLUSH_SECONDS)


def measure_outcomes(base: str, *args: object) -> tuple[Result, dict[str, float]]:
    """``bench.measure`` and the decisions it caused, by outcome."""
    before = decision_outcomes(base)
    result = measure(*args)  # type: ignore[arg-type]
    after = decision_outcomes(base)
    return result, {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def fill_share(outcomes: list[dict[str, float]]) -> str:
    """Filled decisions over all, and the commonest no-fill reason."""
    total: dict[str, float] = {}
    for counts in outcomes:
        for outcome, count in counts.items():
            total[outcome] = total.get(outcome, 0) + count
    decisions = sum(total.values())
    if not decisions:
        return "-"
    text = f"{total.get('fill', 0) / decisions:.0%}"
    others = sorted(((n, o) for o, n in total.items() if o != "fill"), reverse=True)
    if others:
        text += f" ({others[0][1]} {others[0][0] / decisions:.0%})"
    return text


@dataclass
class Runs:
    """One state's measurements, one per round."""

    state: State
    loaded: Loaded
    fill: float = 0.0
    closed: list[Result] = field(default_factory=list)
    paced: list[Result] = field(default_factory=list)
    closed_outcomes: list[dict[str, float]] = field(default_factory=list)
    paced_outcomes: list[dict[str, float]] = field(default_factory=list)


def ratios(runs: list[Result], baseline: list[Result], metric: str) -> list[float]:
    """Per round: this state's ``metric`` over the baseline's in the same round."""
    return [
        getattr(r, metric) / getattr(b, metric)
        for r, b in zip(runs, baseline, strict=True)
        if getattr(b, metric)
    ]


def report(
    all_runs: list[Runs], args: argparse.Namespace, argv: Sequence[str], redis_text: str
) -> str:
    baseline = all_runs[0]
    lines = [
        f"Measured on: {machine(redis_text)}.",
        "",
        f"Command: `{' '.join(['python loadtests/bench.py scaling', *argv])}`",
        f"One uvicorn worker per state, each state its own redis-server; wrk -t1; per round "
        f"and state, {args.seconds:g} s closed loop with {args.connections} connections and "
        f"{args.seconds:g} s paced at {args.rate:g} decisions/s over {args.paced_connections} "
        f"connections; {args.rounds} interleaved rounds. Medians over the rounds (min to max); "
        f"ratios to the baseline ({baseline.state.name}) are taken within each round.",
        "",
        f"| State | Fill, unloaded | p50 ms @ {args.rate:g}/s | p99 ms @ {args.rate:g}/s "
        f"| p50 vs baseline | p99 vs baseline | Fill @ {args.rate:g}/s | Max req/s "
        "| Max vs baseline | Fill at max | EVALSHA/req | App CPU ms/decision "
        "| Redis CPU ms/decision |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for runs in all_runs:
        closed, paced = runs.closed, runs.paced
        lines.append(
            f"| {runs.state.name} | {runs.fill:.0%} "
            f"| {spread([r.p50 for r in paced])} | {spread([r.p99 for r in paced])} "
            f"| {spread(ratios(paced, baseline.paced, 'p50'))} "
            f"| {spread(ratios(paced, baseline.paced, 'p99'))} "
            f"| {fill_share(runs.paced_outcomes)} "
            f"| {spread([r.rps for r in closed], 0)} "
            f"| {spread(ratios(closed, baseline.closed, 'rps'))} "
            f"| {fill_share(runs.closed_outcomes)} "
            f"| {statistics.median(r.evalsha_per_request for r in closed + paced):.3f} "
            f"| {statistics.median(r.app_cpu_per_1k for r in closed):.3f} "
            f"| {statistics.median(r.redis_cpu_per_1k for r in closed):.3f} |"
        )
    lines += [
        "",
        "| Users loaded | Keys per user | used_memory growth | Bytes per user | Load time "
        "| Users/s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    seen: set[int] = set()
    for runs in all_runs:
        loaded = runs.loaded
        if runs.state.users in seen:
            continue
        seen.add(runs.state.users)
        users = len(loaded.user_ids)
        lines.append(
            f"| {users:,} | {loaded.keys / users:.2f} "
            f"| {loaded.memory_after - loaded.memory_before:,} B "
            f"| {loaded.bytes_per_user:,.0f} | {loaded.seconds:.1f} s "
            f"| {users / loaded.seconds:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def states_of(users: Sequence[int], campaigns: Sequence[int]) -> list[State]:
    """The baseline (fewest of both), then each other count of one with the fewest of the
    other."""
    base = State(min(users), min(campaigns))
    return [
        base,
        *(State(u, base.campaigns) for u in sorted(set(users)) if u != base.users),
        *(State(base.users, c) for c in sorted(set(campaigns)) if c != base.campaigns),
    ]


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench.py scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--campaigns", type=int, nargs="+", default=[10, 1_000, 10_000])
    parser.add_argument("--seconds", type=float, default=10, help="per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32, help="closed-loop runs")
    parser.add_argument(
        "--rate",
        type=float,
        default=20,
        help="decisions/s of the paced runs: under every state's maximum, so that their "
        "latency is a decision's, not a queue's (10,000 campaigns manage ~25/s on 2 busy cores)",
    )
    parser.add_argument("--paced-connections", type=int, default=4)
    parser.add_argument(
        "--publisher", type=int, help="publisher index (default: the best filled of 0-39)"
    )
    add_redis_server_option(parser)
    parser.add_argument("--markdown", type=Path, help="append the results to this file")
    args = parser.parse_args(argv)
    require_wrk()
    now = time.time()
    work = Path(tempfile.mkdtemp(prefix="retarget-scaling-"))
    binary = production_redis_server(work, args.redis_server)
    all_runs: list[Runs] = []
    with contextlib.ExitStack() as stack:
        servers = []
        for index, state in enumerate(states_of(args.users, args.campaigns)):
            embedded = stack.enter_context(EmbeddedRedis(work / f"redis-{index}", binary=binary))
            redis_text = redis_build(Redis.from_url(embedded.url))
            loaded = asyncio.run(load_state(embedded.url, state, now))
            print(
                f"{state.name}: loaded in {loaded.seconds:.1f} s, "
                f"{loaded.bytes_per_user:,.0f} B/user",
                file=sys.stderr,
            )
            port = free_port()
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("RETARGET_")},
                "RETARGET_REDIS_URL": embedded.url,
                "RETARGET_ADMIN_TOKEN": ADMIN,
                "RETARGET_SECRET_KEY": "scaling-secret",
                "RETARGET_PORT": str(port),
                "RETARGET_DATA_DIR": str(work / f"service-{index}"),
                "RETARGET_LOG_LEVEL": "warning",
                # 10,000 campaigns are ~14 MB of JSON read in one transaction: past the default
                # 0.25 s reply timeout on a busy machine. Decisions keep their own deadline.
                "RETARGET_REDIS_SOCKET_TIMEOUT": "5",
                # One address seeds thousands of campaigns and sends every decision.
                "RETARGET_DECISIONS_PER_KEY_PER_MINUTE": "1000000000",
                "RETARGET_API_REQUESTS_PER_KEY_PER_MINUTE": "1000000000",
            }
            pid = stack.enter_context(
                process(
                    [sys.executable, "-m", "retarget", "serve"],
                    env,
                    port,
                    work / f"service-{index}.log",
                )
            )
            users_file = work / f"users-{index}.txt"
            users_file.write_text("\n".join(loaded.user_ids) + "\n")
            redis = Redis.from_url(embedded.url)
            without_aof_rewrites(redis)
            servers.append((f"http://127.0.0.1:{port}", pid, redis, embedded, users_file))
            all_runs.append(Runs(state, loaded))

        # The same publisher in every state (the generator makes it identically): by default
        # the one of the first 40 whose first placement fills best for the baseline's users.
        for url, *_ in servers:
            wait_for_catalog(url, publisher_placement(0)[0])
        base_url, *_ = servers[0]
        probe = random.Random(1).sample(all_runs[0].loaded.user_ids, 20)
        candidates = [args.publisher] if args.publisher is not None else range(40)
        chosen = max(
            candidates,
            key=lambda i: fill_rate(base_url, *publisher_placement(i), probe),
        )
        key, domain, placement = publisher_placement(chosen)
        for runs, (url, *_) in zip(all_runs, servers, strict=True):
            sample = random.Random(2).sample(runs.loaded.user_ids, 200)
            runs.fill = fill_rate(url, key, domain, placement, sample)
            print(
                f"{runs.state.name}: fill {runs.fill:.0%} ({domain}/{placement})", file=sys.stderr
            )

        def env_of(users_file: Path) -> dict[str, str]:
            return {
                "BENCH_USERS": str(users_file),
                "BENCH_KEY": key,
                "BENCH_DOMAIN": domain,
                "BENCH_PLACEMENT": placement,
            }

        for url, _, _, _, users_file in servers:  # warm up
            wrk(url, "decisions.lua", env_of(users_file), 2, args.connections)
        for _ in range(args.rounds):
            for runs, (url, pid, redis, embedded, users_file) in zip(
                all_runs, servers, strict=True
            ):
                redis_pid = embedded.process.pid  # type: ignore[union-attr]
                common = (url, "decisions.lua", env_of(users_file), pid, redis, redis_pid)
                forget_serving(redis)
                closed, closed_outcomes = measure_outcomes(
                    url, runs.state.name, *common, args.seconds, args.connections
                )
                forget_serving(redis)
                paced, paced_outcomes = measure_outcomes(
                    url, runs.state.name, *common, args.seconds, args.paced_connections, args.rate
                )
                runs.closed.append(closed)
                runs.paced.append(paced)
                runs.closed_outcomes.append(closed_outcomes)
                runs.paced_outcomes.append(paced_outcomes)
                print(
                    f"{runs.state.name:28} max {closed.rps:7,.0f}/s p99 {closed.p99:7.2f} ms"
                    f" | @{args.rate:g}/s p50 {paced.p50:.2f} p99 {paced.p99:.2f} ms"
                    f" errors {closed.errors + paced.errors}",
                    file=sys.stderr,
                )

    text = report(all_runs, args, argv, redis_text)
    print(text)
    if args.markdown:
        with args.markdown.open("a") as out:
            out.write("\n" + text)
