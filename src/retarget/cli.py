"""``retarget`` command line: ``retarget serve`` runs the service."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
from collections.abc import Sequence

import uvicorn

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


def serve(settings: Settings) -> None:
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
            "loop": "uvloop",
            "http": "httptools",
            "lifespan": "on",
            "access_log": settings.access_log,
            "log_level": settings.log_level,
            # A dict, not None: uvicorn applies it again in each spawned worker process.
            "log_config": logging_config(settings),
            "server_header": False,
            "timeout_graceful_shutdown": settings.graceful_shutdown_seconds,
        }
        log.info("starting", extra=starting)
        if settings.workers == 1:
            uvicorn.run(create_app(settings), **config)  # type: ignore[arg-type]
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
            uvicorn.run(
                "retarget.app:create_app_from_env",
                factory=True,
                workers=settings.workers,
                **config,  # type: ignore[arg-type]
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
    args = parser.parse_args(argv)

    overrides = {k: v for k in ("host", "port", "workers") if (v := getattr(args, k)) is not None}
    try:
        settings = load_settings(**overrides)
        if args.command == "serve":
            serve(settings)
    except (SettingsError, EmbeddedRedisError) as exc:
        _say(str(exc))
        sys.exit(2)
