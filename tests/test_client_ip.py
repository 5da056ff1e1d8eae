"""The client IP: the socket peer, or X-Forwarded-For walked from the right past our proxies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retarget.client_ip import TrustedProxies, parse_networks
from retarget.settings import SettingsError, load_settings

PROXIES = TrustedProxies(parse_networks("10.0.0.0/8, 192.168.1.7, fd00::/8"))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    nobody = TrustedProxies(())

    assert nobody.client_ip("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"


def test_an_untrusted_peer_cannot_name_another_client() -> None:
    assert PROXIES.client_ip("203.0.113.9", ["10.0.0.1, 198.51.100.1"]) == "203.0.113.9"


def test_from_a_trusted_proxy_the_client_is_the_address_it_appended() -> None:
    assert PROXIES.client_ip("10.0.0.2", ["198.51.100.1"]) == "198.51.100.1"


def test_the_walk_skips_every_trusted_hop_from_the_right() -> None:
    forwarded = ["192.0.2.66, 203.0.113.9, 192.168.1.7", "10.9.9.9"]

    assert PROXIES.client_ip("10.0.0.2", forwarded) == "203.0.113.9"


def test_addresses_a_client_writes_on_the_left_are_never_believed() -> None:
    spoofed = [PROXIES.client_ip("10.0.0.2", [f"192.0.2.{n}, 203.0.113.9"]) for n in range(50)]

    assert set(spoofed) == {"203.0.113.9"}


def test_when_every_hop_is_a_proxy_the_leftmost_is_the_client() -> None:
    assert PROXIES.client_ip("10.0.0.2", ["10.0.0.3, 10.0.0.4"]) == "10.0.0.3"


def test_a_proxy_without_the_header_is_itself_the_client() -> None:
    assert PROXIES.client_ip("10.0.0.2", []) == "10.0.0.2"


def test_ipv6_and_ipv4_mapped_peers_are_recognised() -> None:
    assert PROXIES.client_ip("fd00::1", ["2001:db8::1"]) == "2001:db8::1"
    assert PROXIES.client_ip("::ffff:10.0.0.2", ["198.51.100.1"]) == "198.51.100.1"


def test_addresses_are_compared_in_their_canonical_spelling() -> None:
    assert PROXIES.client_ip("10.0.0.2", ["2001:DB8:0:0::1"]) == "2001:db8::1"


def test_a_malformed_trusted_proxies_setting_stops_startup_naming_it() -> None:
    with pytest.raises(SettingsError, match="RETARGET_TRUSTED_PROXIES"):
        load_settings(trusted_proxies="10.0.0.0/8, not-an-address")


@given(st.lists(st.text(max_size=80), max_size=5), st.sampled_from(["10.0.0.2", "203.0.113.9"]))
def test_any_header_gives_a_short_client_key_and_never_an_exception(
    headers: list[str], peer: str
) -> None:
    client = PROXIES.client_ip(peer, headers)

    assert 0 < len(client) <= 64
    if peer == "203.0.113.9":
        assert client == peer
