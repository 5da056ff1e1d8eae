"""Instructions per decision: the hot path's CPU work counted by valgrind, not timed.

Timed runs on these shared 2-core machines move by 10 % from one run to the next, which
hides the few percent one change to the hot path makes. An instruction count does not move:
here cachegrind runs decisions in process (``RetargetApp.__call__``, no sockets, one in
flight at a time as at half load) against a real redis-server holding the bench's state,
once with no decisions and once with ``--decisions``, and reports the difference per
decision. Repeated runs agree within 0.2 %.

An instruction is not a unit of time: under valgrind the CPU's SHA extensions are hidden
(HMAC looks dearer than it is) and clock reads are system calls. Use the count to compare
two versions of the code on the same state:

    python loadtests/instructions.py                      # this checkout
    PYTHONPATH=/tmp/old/src python loadtests/instructions.py   # another copy of src/

Needs valgrind (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import ADMIN, ROOT, process, seed

from retarget.embedded_redis import EmbeddedRedis, free_port

SETTINGS = {
    "RETARGET_ADMIN_TOKEN": ADMIN,
    "RETARGET_SECRET_KEY": "bench-secret",
    "RETARGET_LOG_LEVEL": "warning",
    "RETARGET_DECISIONS_PER_KEY_PER_MINUTE": "1000000000",
    "RETARGET_API_REQUESTS_PER_KEY_PER_MINUTE": "1000000000",
    # Valgrind runs the app some 50 times slower, so the background timers would fire 50
    # times as often per decision as in service: slow them down to leave only the requests.
    "RETARGET_COUNTERS_FLUSH_SECONDS": "60",
    "RETARGET_CATALOG_REFRESH_SECONDS": "60",
    "RETARGET_SPOOL_REPLAY_SECONDS": "60",
    "RETARGET_DECISION_DEADLINE_MS": "5000",
}


def decide_in_process(decisions: int, users_file: Path, key: str) -> None:
    """The child: start the app, make 300 decisions to warm up, then ``decisions`` more."""
    from asgi_lifespan import LifespanManager

    from retarget.app import create_app_from_env

    users = users_file.read_text().split()
    rng = random.Random(1)
    filled = 0

    async def one(app: object, state: dict[str, object], user: str) -> None:
        nonlocal filled
        body = (
            b'{"user":{"id":"' + user.encode() + b'","namespace":"cookie"},'
            b'"site":{"domain":"social.example.com"},"placements":[{"id":"feed"}]}'
        )
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/v1/decisions",
            "raw_path": b"/v1/decisions", "query_string": b"", "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                (b"authorization", b"Bearer " + key.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "state": dict(state),
        }  # fmt: skip
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await app(scope, receive, send)  # type: ignore[operator]
        assert sent[0]["status"] == 200, sent
        filled += b'"decision_id"' in sent[1]["body"]  # type: ignore[operator]

    async def run() -> None:
        app = create_app_from_env()
        async with LifespanManager(app, startup_timeout=600, shutdown_timeout=600) as manager:
            await asyncio.sleep(3)  # the catalog
            for _ in range(300):
                await one(app, manager._state, rng.choice(users))
            for _ in range(decisions):
                await one(app, manager._state, rng.choice(users))
        print(f"filled {filled} of {300 + decisions}", file=sys.stderr)

    import uvloop

    uvloop.run(run())


def instructions(decisions: int, env: dict[str, str], users_file: Path, key: str) -> int:
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, __file__, "--child", str(decisions), "--users-file", str(users_file),
        "--key", key,
    ]  # fmt: skip
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stderr
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    assert found, out
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=1_000)
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--users-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        decide_in_process(args.child, args.users_file, args.key)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    work = Path(tempfile.mkdtemp(prefix="retarget-instructions-"))
    with EmbeddedRedis(work / "redis") as embedded:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RETARGET_")}
        env = {**base, **SETTINGS, "RETARGET_REDIS_URL": str(embedded.url)}
        port = free_port()
        seeding = {**env, "RETARGET_PORT": str(port), "RETARGET_DATA_DIR": str(work / "seed")}
        with process([sys.executable, "-m", "retarget", "serve"], seeding, port, work / "seed.log"):
            seeded = seed(f"http://127.0.0.1:{port}", args.users, args.campaigns, random.Random(7))
        users_file = work / "users.txt"
        users_file.write_text("\n".join(seeded["ids"]) + "\n")
        env = {**env, "RETARGET_DATA_DIR": str(work / "app")}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (os.environ.get("PYTHONPATH"), str(ROOT / "loadtests")) if p
        )
        idle = instructions(0, env, users_file, seeded["key"])
        busy = instructions(args.decisions, env, users_file, seeded["key"])
    print(
        f"{(busy - idle) / args.decisions:,.0f} instructions per decision "
        f"({args.decisions:,} decisions, one in flight; {args.users:,} users, "
        f"{args.campaigns:,} campaigns)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
