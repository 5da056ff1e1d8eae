"""``RETARGET_REDIS_CLUSTER``: what it accepts and the one-line refusals (no cluster needed)."""

from __future__ import annotations

import pytest

from retarget.logs import startup_fields
from retarget.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    "url", ["redis://10.0.0.7:7000", "rediss://user:secret@cfg.cache.internal:6390/0"]
)
def test_a_cluster_is_reached_through_the_url_of_one_of_its_nodes(url: str) -> None:
    settings = load_settings(redis_url=url, redis_cluster=True)

    assert settings.redis_cluster is True
    assert settings.redis_url == url


def test_a_single_server_is_the_default() -> None:
    assert load_settings(redis_url="redis://127.0.0.1:6390/0").redis_cluster is False


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "needs RETARGET_REDIS_URL"),
        ("unix:///run/redis.sock", "not unix://"),
        ("redis://10.0.0.7:7000/3", "only database 0"),
    ],
)
def test_a_cluster_without_a_usable_node_url_is_refused_in_one_line(
    url: str | None, reason: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(redis_url=url, redis_cluster=True)

    message = str(raised.value)
    assert "RETARGET_REDIS_CLUSTER" in message
    assert reason in message
    assert "\n" not in message


def test_the_cluster_flag_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETARGET_REDIS_URL", "redis://10.0.0.7:7000")
    monkeypatch.setenv("RETARGET_REDIS_CLUSTER", "true")

    assert load_settings().redis_cluster is True


def test_the_starting_line_says_redis_is_a_cluster_without_naming_its_nodes() -> None:
    settings = load_settings(redis_url="redis://:pw@cfg.cache.internal:6390", redis_cluster=True)

    fields = startup_fields(settings)

    assert fields["redis"] == "cluster"
    assert "cfg.cache.internal" not in str(fields)
