"""``retarget`` command line: ``retarget serve`` runs the service, ``retarget demo`` seeds
the demo into a running one (``retarget serve --demo`` does both, as ``make run`` does)."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

import orjson

from retarget import demo, workers
from retarget.app import create_app
from retarget.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from retarget.logs import configure_logging, logging_config, startup_fields
from retarget.settings import Settings, SettingsError, load_settings, with_secrets

log = logging.getLogger("retarget")


def _say(line: str) -> None:
    """A line for the human at ``make run`` (development secrets, the embedded Redis)."""
    print(f"retarget: {line}", file=sys.stderr, flush=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def local_url(settings: Settings) -> str:
    """Where this machine reaches the service: ``RETARGET_PUBLIC_URL``, else localhost.

    localhost rather than 127.0.0.1: browsers treat http://localhost as a secure context
    (the ``rt_uid`` cookie is Secure), and the demo's landing URLs must use the same host
    the newcomer's browser uses, or the cookie would not follow the click."""
    if settings.public_url:
        return settings.public_url
    loopback = settings.host in ("127.0.0.1", "0.0.0.0", "localhost", "::", "::1")  # noqa: S104
    return f"http://{'localhost' if loopback else settings.host}:{settings.port}"


def seed_demo(settings: Settings, base_url: str) -> demo.Seeded:
    """Seed the demo into the service at ``base_url``; print its URLs and dashboard key.

    The shop's dashboard key is kept in ``<data_dir>/demo.json`` and reused while it
    works, so seeding again does not pile up keys."""
    settings, _ = with_secrets(settings)
    token = settings.admin_token.get_secret_value()  # type: ignore[union-attr]
    keep = settings.data_dir / "demo.json"
    known = orjson.loads(keep.read_bytes()).get("advertiser_key") if keep.exists() else None
    seeded = demo.seed(demo.AdminApi(base_url, token), known_key=known)
    if seeded.advertiser_key != known:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        keep.touch(mode=0o600, exist_ok=True)
        keep.write_bytes(orjson.dumps({"advertiser_key": seeded.advertiser_key}))
    _say("demo ready: " + "  ".join(demo.demo_urls(base_url)))
    _say(f"demo dashboard key (sign in at {base_url}/dashboard): {seeded.advertiser_key}")
    return seeded


def _seed_when_ready(settings: Settings, base_url: str, timeout: float = 60.0) -> None:
    """For ``serve --demo``: wait for /readyz, then seed through the admin API."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    try:
        seed_demo(settings, base_url)
    except (demo.AdminApiError, urllib.error.URLError, OSError) as exc:
        _say(f"demo not seeded: {exc}")


def serve(settings: Settings, *, with_demo: bool = False) -> None:
    """Run uvicorn; with no Redis URL, run a private redis-server for as long as we run."""
    configure_logging(settings)
    settings, filled = with_secrets(settings)
    starting = startup_fields(settings)  # before an embedded Redis fills in redis_url
    for name in filled:
        value = getattr(settings, name).get_secret_value()
        _say(f"development {name}: {value} (kept in {settings.data_dir / 'secrets.json'})")

    embedded = None
    if settings.redis_url is None:
        embedded = EmbeddedRedis(settings.redis_dir)
        settings = settings.model_copy(update={"redis_url": embedded.start()})
        _say(f"embedded redis-server (pid {embedded.process.pid}) at {settings.redis_url}")  # type: ignore[union-attr]
    try:
        # uvicorn drains on SIGTERM, then re-raises it; under the default handler that kills
        # the process before the finally below has stopped the embedded redis-server.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        config: dict[str, object] = {
            "host": settings.host,
            "port": settings.port,
            "lifespan": "on",
            "access_log": settings.access_log,
            "log_level": settings.log_level,
            # A dict, not None: uvicorn applies it again in each spawned worker process.
            "log_config": logging_config(settings),
            "timeout_graceful_shutdown": settings.graceful_shutdown_seconds,
        }
        log.info("starting", extra=starting)
        if with_demo:
            seeding = threading.Thread(
                target=_seed_when_ready, args=(settings, local_url(settings)), daemon=True
            )
            seeding.start()
        if settings.workers == 1:
            workers.run(create_app(settings), 1, **config)
        else:
            # Each worker writes its metrics to files here; /metrics adds them up.
            metrics_dir = settings.data_dir / "metrics"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
            # Worker processes rebuild the settings from the environment: hand them what we
            # resolved here (the embedded Redis URL, development secrets).
            os.environ["RETARGET_REDIS_URL"] = str(settings.redis_url)
            os.environ["RETARGET_ADMIN_TOKEN"] = settings.admin_token.get_secret_value()  # type: ignore[union-attr]
            os.environ["RETARGET_SECRET_KEY"] = settings.secret_key.get_secret_value()  # type: ignore[union-attr]
            # Each worker on a listening socket of its own (workers.py).
            workers.run(
                "retarget.app:create_app_from_env", settings.workers, factory=True, **config
            )
    finally:
        # Stopped last, after uvicorn has drained in-flight requests.
        if embedded is not None:
            embedded.stop()
            _say("embedded redis-server stopped")
        log.info("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="retarget", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="run the ad server")
    serve_cmd.add_argument("--host", help="overrides RETARGET_HOST")
    serve_cmd.add_argument("--port", type=int, help="overrides RETARGET_PORT")
    serve_cmd.add_argument("--workers", type=int, help="overrides RETARGET_WORKERS")
    serve_cmd.add_argument(
        "--demo", action="store_true", help="seed the demo once the service answers"
    )
    demo_cmd = commands.add_parser(
        "demo", help="seed the demo shop, publishers and campaign into a running service"
    )
    demo_cmd.add_argument(
        "--url", help="the service's URL (default: RETARGET_PUBLIC_URL, else localhost:port)"
    )
    demo_cmd.add_argument("--port", type=int, help="overrides RETARGET_PORT")
    args = parser.parse_args(argv)

    names = ("host", "port", "workers")
    overrides = {k: v for k in names if (v := getattr(args, k, None)) is not None}
    try:
        settings = load_settings(**overrides)
        if args.command == "serve":
            serve(settings, with_demo=args.demo)
        elif args.command == "demo":
            seed_demo(settings, (args.url or local_url(settings)).rstrip("/"))
    except (SettingsError, EmbeddedRedisError) as exc:
        _say(str(exc))
        sys.exit(2)
    except (demo.AdminApiError, urllib.error.URLError, OSError) as exc:
        _say(f"demo not seeded: {exc}")
        sys.exit(1)
