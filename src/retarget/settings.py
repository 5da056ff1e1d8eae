"""The service's configuration: one object, built once from ``RETARGET_*`` variables."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import orjson
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from retarget.client_ip import parse_networks

REDIS_URL_SCHEMES = ("redis", "rediss", "unix")


class SettingsError(Exception):
    """A setting is malformed or missing; the message is one line naming it."""


class Settings(BaseSettings):
    """Every knob of the service. Field docs are the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="RETARGET_", frozen=True, extra="ignore")

    env: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses to start without an admin token and a secret key.",
    )
    redis_url: str | None = Field(
        None,
        description="`redis://`, `rediss://` or `unix://` URL of the Redis to use. "
        "Unset: start an embedded redis-server under the data directory.",
    )
    redis_cluster: bool = Field(
        False,
        description="`true`: `RETARGET_REDIS_URL` names one node of a Redis Cluster "
        "(`redis://` or `rediss://`, database 0); the others are discovered from it.",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token of the admin API. Development: generated once and kept "
        "in the data directory.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs tracking URLs. Development: generated once and kept "
        "in the data directory.",
    )
    cookie_domain: str | None = Field(
        None, description="Domain attribute of the `rt_uid` cookie (unset: host-only)."
    )
    public_url: str | None = Field(
        None,
        description="Base URL the service is reached at, used in embed code "
        "(unset: taken from the request).",
    )
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Number of worker processes.")
    data_dir: Path = Field(
        Path("var"),
        description="Where development secrets, the embedded Redis (`<data_dir>/redis`) and the "
        "spool of events waiting for Redis (`<data_dir>/spool`) live.",
    )
    redis_connect_timeout: float = Field(
        0.5, gt=0, le=30, description="Seconds to wait for a Redis connection."
    )
    redis_socket_timeout: float = Field(
        0.25, gt=0, le=30, description="Seconds to wait for a Redis reply."
    )
    redis_health_check_interval: int = Field(
        30, ge=0, description="Seconds an idle Redis connection may sit before it is re-checked."
    )
    redis_max_connections: int = Field(
        256, ge=1, description="Redis connections per worker process."
    )
    breaker_failure_threshold: int = Field(
        5,
        ge=1,
        description="Consecutive failed or timed-out Redis calls that open the circuit breaker.",
    )
    breaker_cooldown_seconds: float = Field(
        1.0,
        gt=0,
        le=300,
        description="How long an open breaker keeps the hot paths off Redis before one trial call.",
    )
    spool_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=4096,
        description="Largest spool of events waiting for Redis, per worker (full: pixel and "
        "`/v1/events` answer 503).",
    )
    spool_replay_seconds: float = Field(
        0.5, gt=0, le=60, description="How often a worker replays its spool into Redis."
    )
    catalog_refresh_seconds: float = Field(
        0.5,
        gt=0,
        description="How often each worker checks whether advertisers or audiences changed.",
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request body accepted, in bytes."
    )
    max_events_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest `POST /v1/events` body, in bytes."
    )
    s2s_signature_tolerance_seconds: int = Field(
        300, ge=1, description="How old a server-to-server signature timestamp may be."
    )
    max_memberships_per_user: int = Field(
        64, ge=1, le=1024, description="Audience memberships kept per user (oldest dropped)."
    )
    dedup_window_days: int = Field(
        35, ge=1, le=400, description="How long an `event_id` or order id is remembered."
    )
    decision_deadline_ms: int = Field(
        50, ge=1, le=10_000, description="Every decision answers within this (no-fill after)."
    )
    pixel_deadline_ms: int = Field(
        50,
        ge=1,
        le=10_000,
        description="How long a pixel hit waits for Redis; past it the hit is spooled "
        "(fsync'd, then acknowledged) and recorded when Redis answers.",
    )
    max_inflight_decisions: int = Field(
        256,
        ge=1,
        description="Decisions in progress per worker; more get an immediate no-fill.",
    )
    advertising_enabled: bool = Field(
        True, description="Kill switch: false answers every decision with no ad."
    )
    ad_ttl_seconds: int = Field(300, ge=1, description="How long a publisher may keep an ad.")
    tracking_ttl_seconds: int = Field(
        86_400, ge=60, description="How long impression and click URLs stay valid."
    )
    decision_scripts_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        description="A large plan (a context with about sixty candidates or more) is sent "
        "to Redis as a script of its own, which Redis keeps; once the scripts a worker sent "
        "pass this size, it flushes Redis's script cache (they are sent again when next used).",
    )
    counters_flush_seconds: float = Field(
        0.25, gt=0, le=60, description="How often report counters and budget spend are synced."
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated IPs or CIDRs of the proxies in front of the service. "
        "A request from one of them is attributed to the rightmost address of "
        "`X-Forwarded-For` that is not a trusted proxy; from any other peer, to the peer. "
        "Empty: `X-Forwarded-For` is ignored.",
    )
    pixel_hits_per_ip_per_minute: int = Field(
        600,
        ge=0,
        description="Pixel hits per client IP per minute, per worker (bursts up to the same "
        "number); more get the GIF with a 429 and record nothing. 0: no limit.",
    )
    pixel_hits_per_pixel_per_minute: int = Field(
        60_000,
        ge=0,
        description="Pixel hits per pixel id per minute, per worker; as above. 0: no limit.",
    )
    decisions_per_key_per_minute: int = Field(
        300_000,
        ge=0,
        description="Decisions per publisher key (or, for the keyless browser tags, per "
        "client IP) per minute, per worker; more get a 429 with `Retry-After`. 0: no limit.",
    )
    api_requests_per_key_per_minute: int = Field(
        6_000,
        ge=0,
        description="Other API calls per bearer key (or per client IP without one) per "
        "minute, per worker; more get a 429 with `Retry-After`. 0: no limit.",
    )
    access_log: bool = Field(False, description="Log every request (off: hot paths stay lean).")
    graceful_shutdown_seconds: float = Field(
        10, ge=0, description="How long SIGTERM waits for in-flight requests."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )
    log_format: Literal["json", "text"] = Field(
        "json",
        description="`json`: one JSON object per line (ts, level, logger, message, fields); "
        "`text`: plain lines for a terminal.",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url_has_a_known_scheme(cls, url: str | None) -> str | None:
        if url is None or url == "":
            return None
        parts = urlsplit(url)
        if parts.scheme not in REDIS_URL_SCHEMES:
            raise ValueError(f"must start with {', '.join(s + '://' for s in REDIS_URL_SCHEMES)}")
        if parts.scheme == "unix" and not parts.path:
            raise ValueError("unix:// URL needs a socket path")
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("needs a host")
        return url

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_networks(cls, text: str) -> str:
        parse_networks(text)  # raises ValueError naming the bad entry
        return text

    @field_validator("redis_cluster")
    @classmethod
    def _a_cluster_needs_a_tcp_node_url(cls, cluster: bool, info: ValidationInfo) -> bool:
        if not cluster:
            return cluster
        url = info.data.get("redis_url")
        if url is None:
            raise ValueError("needs RETARGET_REDIS_URL naming a cluster node")
        parts = urlsplit(url)
        if parts.scheme == "unix":
            raise ValueError("needs a redis:// or rediss:// RETARGET_REDIS_URL, not unix://")
        if parts.path.strip("/") not in ("", "0"):
            raise ValueError("a Redis Cluster has only database 0")
        return cluster

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, url: str | None) -> str | None:
        if not url:
            return None
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("must be an absolute http(s) URL")
        return url.rstrip("/")

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError naming the first bad one."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "RETARGET_" + str(error["loc"][0]).upper() if error["loc"] else "RETARGET_*"
        raise SettingsError(f"invalid setting {name}: {error['msg']}") from None


def with_secrets(settings: Settings) -> tuple[Settings, list[str]]:
    """Fill in a missing admin token or secret key.

    Development keeps generated values in ``<data_dir>/secrets.json`` so they survive
    restarts; production refuses to guess. Returns the settings and the names generated
    or loaded, so the caller can print them once at startup.
    """
    missing = [name for name in ("admin_token", "secret_key") if getattr(settings, name) is None]
    if not missing:
        return settings, []
    if settings.env == "production":
        name = "RETARGET_" + missing[0].upper()
        raise SettingsError(f"missing setting {name}: required when RETARGET_ENV=production")
    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
    for name in missing:
        stored.setdefault(name, secrets.token_urlsafe(32))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(orjson.dumps(stored, option=orjson.OPT_INDENT_2))
    filled = settings.model_copy(update={name: SecretStr(stored[name]) for name in missing})
    return filled, missing
