"""Logs: one line per record on stderr, a JSON object by default (``RETARGET_LOG_FORMAT``).

The same configuration is handed to uvicorn as its ``log_config``, so its spawned worker
processes (``--workers N``) apply it too. Requests are not logged unless
``RETARGET_ACCESS_LOG`` is on: the hot paths stay lean.
"""

from __future__ import annotations

import logging
import logging.config
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from retarget.settings import Settings

# What every LogRecord carries; anything else on a record came in through ``extra=``.
# uvicorn adds ``color_message`` (its message with ANSI colours) to some records.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}


def _type_name(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


def _as_text(value: object) -> str:
    # str(), not repr(): pydantic's SecretStr renders as '**********'.
    return str(value)


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: ts (ISO-8601, UTC), level, logger, message, then
    ``exc_type`` and ``exc`` for an exception, ``stack`` for stack info, and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = _type_name(record.exc_info[0])
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in extra_fields(record).items():
            entry.setdefault(key, value)  # an extra never hides a standard field
        try:
            line = orjson.dumps(entry, default=_as_text, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits, nesting too deep
            line = orjson.dumps({k: v if isinstance(v, str) else str(v) for k, v in entry.items()})
        return line.decode()


class TextFormatter(logging.Formatter):
    """For a human at a terminal: ``<ts> <LEVEL> <logger>: <message> key=value ...``."""

    converter = time.gmtime  # UTC, as in the JSON lines

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{k}={_as_text(v)}" for k, v in extra_fields(record).items())
        return f"{line} {extras}" if extras else line


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: the retarget and uvicorn loggers, and the root
    logger (for libraries' warnings and errors), all to stderr in ``settings.log_format``."""
    level = settings.log_level.upper()
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    handler = ["stderr"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"retarget": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "retarget",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "retarget": {"level": level, "handlers": handler, "propagate": False},
            "uvicorn": {"level": level, "handlers": handler, "propagate": False},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # No handler and no propagation: uvicorn then skips access logging entirely.
            "uvicorn.access": {
                "level": level,
                "handlers": handler if settings.access_log else [],
                "propagate": False,
            },
        },
        "root": {"level": "ERROR" if level == "ERROR" else "WARNING", "handlers": handler},
    }


def configure_logging(settings: Settings) -> None:
    """Apply :func:`logging_config` to this process."""
    logging.config.dictConfig(logging_config(settings))


def startup_fields(settings: Settings) -> dict[str, Any]:
    """What the "starting" line says about the configuration. Never a secret, nor the Redis
    URL (it may carry a password): only whether Redis is embedded, external or a cluster."""
    return {
        "env": settings.env,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "redis": _redis_kind(settings),
        "access_log": settings.access_log,
        "graceful_shutdown_seconds": settings.graceful_shutdown_seconds,
    }


def _redis_kind(settings: Settings) -> str:
    if settings.redis_url is None:
        return "embedded"
    return "cluster" if settings.redis_cluster else "external"
