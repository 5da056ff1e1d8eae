from pathlib import Path

import pytest

from retarget.settings import SettingsError, load_settings, with_secrets


def test_a_malformed_redis_url_is_named_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETARGET_REDIS_URL", "nonsense")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "RETARGET_REDIS_URL" in message
    assert "\n" not in message


def test_a_malformed_port_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETARGET_PORT", "eighty")
    with pytest.raises(SettingsError, match="RETARGET_PORT"):
        load_settings()


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:7000/0", "rediss://cache.internal:6380", "unix:///run/r.sock"]
)
def test_redis_unix_and_tls_urls_are_accepted(url: str) -> None:
    assert load_settings(redis_url=url).redis_url == url


def test_development_generates_secrets_once_and_keeps_them(tmp_path: Path) -> None:
    first, generated = with_secrets(load_settings(data_dir=tmp_path))
    again, _ = with_secrets(load_settings(data_dir=tmp_path))

    assert generated == ["admin_token", "secret_key"]
    assert first.admin_token is not None
    assert first.secret_key is not None
    assert again.admin_token == first.admin_token
    assert again.secret_key == first.secret_key
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_production_refuses_to_start_without_an_admin_token(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="RETARGET_ADMIN_TOKEN"):
        with_secrets(load_settings(env="production", data_dir=tmp_path, secret_key="s"))
    assert not (tmp_path / "secrets.json").exists()


def test_configured_secrets_are_used_as_given(tmp_path: Path) -> None:
    settings, generated = with_secrets(
        load_settings(data_dir=tmp_path, admin_token="a", secret_key="b")
    )
    assert generated == []
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "a"
