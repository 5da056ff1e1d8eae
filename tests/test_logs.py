"""Log lines: one JSON object per record, and nothing secret in them."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from retarget.logs import JsonFormatter, TextFormatter, logging_config, startup_fields
from retarget.settings import Settings

ADMIN_TOKEN = "admin-token-never-logged"
SECRET_KEY = "secret-key-never-logged"
REDIS_PASSWORD = "redis-password-never-logged"


def record(message: str, *args: object, exc_info: Any = None, **extra: object) -> logging.LogRecord:
    """A record as ``logging.getLogger("retarget").info(message, *args, extra=extra)`` makes it."""
    logger = logging.getLogger("retarget")
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, message, args, exc_info, extra=extra
    )


def json_line(log_record: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(log_record)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert isinstance(entry, dict)
    return entry


def test_a_record_is_one_json_object_with_ts_level_logger_and_message() -> None:
    entry = json_line(record("catalog refresh failed;\nkeeping version %s", 7))

    assert entry["level"] == "INFO"
    assert entry["logger"] == "retarget"
    assert entry["message"] == "catalog refresh failed;\nkeeping version 7"
    assert entry["ts"].endswith("Z")
    ts = datetime.fromisoformat(entry["ts"])
    assert ts.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - ts).total_seconds()) < 60


def test_extra_fields_become_fields_of_the_line() -> None:
    entry = json_line(record("starting", host="127.0.0.1", port=8000, workers=2))

    assert entry["message"] == "starting"
    assert (entry["host"], entry["port"], entry["workers"]) == ("127.0.0.1", 8000, 2)


def test_an_extra_field_never_replaces_a_standard_one() -> None:
    entry = json_line(record("starting", level="loud", ts="yesterday"))

    assert entry["level"] == "INFO"
    assert entry["ts"] != "yesterday"


def test_an_exception_record_carries_exc_type_and_the_traceback() -> None:
    try:
        raise ConnectionResetError("redis went away")
    except ConnectionResetError:
        entry = json_line(record("unhandled error on %s", "/v1/decisions", exc_info=sys.exc_info()))

    assert entry["message"] == "unhandled error on /v1/decisions"
    assert entry["exc_type"] == "ConnectionResetError"
    assert "redis went away" in entry["exc"]
    assert entry["exc"].startswith("Traceback")


def test_a_library_exception_is_named_with_its_module() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        raise RedisConnectionError("refused")
    except RedisConnectionError:
        entry = json_line(record("redis error", exc_info=sys.exc_info()))

    assert entry["exc_type"] == "redis.exceptions.ConnectionError"


def test_a_value_json_cannot_hold_is_written_as_text() -> None:
    entry = json_line(record("odd", path=object.__new__(object), huge=2**80))

    assert entry["path"].startswith("<object object")
    assert entry["huge"] == str(2**80)


def test_the_starting_line_names_no_secret_and_not_the_redis_url() -> None:
    settings = Settings(
        env="production",
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        redis_url=f"redis://:{REDIS_PASSWORD}@redis.internal:6390/0",
        host="0.0.0.0",  # noqa: S104
        workers=4,
    )

    line = JsonFormatter().format(record("starting", **startup_fields(settings)))

    for secret in (ADMIN_TOKEN, SECRET_KEY, REDIS_PASSWORD, "redis.internal"):
        assert secret not in line
    entry = orjson.loads(line)
    assert (entry["host"], entry["port"], entry["workers"]) == ("0.0.0.0", 8000, 4)  # noqa: S104
    assert entry["redis"] == "external"


def test_without_a_redis_url_the_starting_line_says_redis_is_embedded() -> None:
    assert startup_fields(Settings(redis_url=None))["redis"] == "embedded"


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()], ids=["json", "text"])
def test_a_secret_logged_by_mistake_is_masked(formatter: logging.Formatter) -> None:
    line = formatter.format(record("configured", admin_token=SecretStr(ADMIN_TOKEN)))

    assert ADMIN_TOKEN not in line
    assert "**********" in line


def test_a_text_line_has_the_level_logger_message_and_extra_fields() -> None:
    line = TextFormatter().format(record("starting", port=8000, redis="embedded"))

    assert line.endswith(" INFO retarget: starting port=8000 redis=embedded")


def test_the_access_log_has_no_handler_unless_it_is_turned_on() -> None:
    off = logging_config(Settings())["loggers"]["uvicorn.access"]
    on = logging_config(Settings(access_log=True))["loggers"]["uvicorn.access"]

    # No handler and no propagation: uvicorn then skips access logging altogether.
    assert (off["handlers"], off["propagate"]) == ([], False)
    assert on["handlers"] == ["stderr"]


def test_the_retarget_and_uvicorn_loggers_write_in_the_configured_format() -> None:
    config = logging_config(Settings(log_format="text", log_level="warning"))

    assert config["formatters"]["retarget"]["()"] == "retarget.logs.TextFormatter"
    for name in ("retarget", "uvicorn"):
        assert config["loggers"][name]["handlers"] == ["stderr"]
        assert config["loggers"][name]["level"] == "WARNING"
    assert config["loggers"]["uvicorn.error"]["propagate"] is True
    assert logging_config(Settings())["formatters"]["retarget"]["()"] == (
        "retarget.logs.JsonFormatter"
    )
