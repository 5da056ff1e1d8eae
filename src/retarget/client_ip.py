"""Who is asking: the client's IP address, as the rate limits see it.

The socket's peer address, unless that peer is one of the configured trusted proxies
(``RETARGET_TRUSTED_PROXIES``): then ``X-Forwarded-For`` is walked from the right, skipping
trusted hops, and the first address that is not a trusted proxy is the client. Walking from
the right matters because a client writes whatever it likes on the left: only the entries
appended by our own proxies can be believed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

Network = IPv4Network | IPv6Network
UNKNOWN = "unknown"


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.168.1.7"`` -> networks; ValueError naming a malformed entry."""
    networks = []
    for entry in text.replace(";", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or CIDR") from None
    return tuple(networks)


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` entries are believed."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        # Peers repeat (the same proxies, the same clients): remember the verdicts.
        self._trusts = lru_cache(maxsize=4096)(self._trusts_uncached)

    def trusts(self, address: str) -> bool:
        return bool(self.networks) and self._trusts(address)

    def _trusts_uncached(self, address: str) -> bool:
        try:
            ip = ip_address(address.strip())
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:  # type: ignore[union-attr]
            ip = ip.ipv4_mapped  # type: ignore[union-attr]
        return any(ip.version == net.version and ip in net for net in self.networks)

    def client_ip(self, peer: str | None, forwarded_for: Sequence[str]) -> str:
        """The client's address: ``peer`` unless it is trusted, else the rightmost untrusted
        ``X-Forwarded-For`` hop (``forwarded_for``: every such header's value, in order).

        When every hop is trusted, the leftmost one is the best we know. A hop that is not
        an IP address (``unknown``, garbage) ends the walk: it is what the last trusted
        proxy saw, so it is the client, whatever it says.
        """
        if not peer:
            return UNKNOWN
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        hops = [hop for hop in hops if hop]
        client = peer
        for hop in reversed(hops):
            client = _normalized(hop)
            if not self.trusts(client):
                return client
        return client


def _normalized(hop: str) -> str:
    """An address as written in a header, in its canonical spelling (long junk cut short, so
    it cannot be used to mint endless distinct limiter keys of unbounded size)."""
    try:
        return str(ip_address(hop))
    except ValueError:
        return hop[:64]
