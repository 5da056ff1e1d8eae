"""Every Redis key name, one function per key family.

A user's keys share the hash tag ``{u:<namespace>:<id>}`` so a script can touch all of them
in one call, on a single server or on Redis Cluster. Configuration shares ``{cfg}`` so it
changes in one MULTI/EXEC together with its version counter.
"""

from __future__ import annotations

from retarget.users import Namespace, UserRef

_NS = {Namespace.COOKIE: "c", Namespace.EMAIL: "e", Namespace.MAID: "m"}


def user_tag(user: UserRef) -> str:
    return f"{{u:{_NS[user.namespace]}:{user.id}}}"


def user_profile(user: UserRef) -> str:
    """Hash: ``m:<audience>`` -> ``"<since>:<expires>"``; ``p:<advertiser>`` -> last purchase."""
    return user_tag(user) + ":p"


def user_seen_events(user: UserRef) -> str:
    """Sorted set of ``<advertiser id>:<event or order id>`` scored by first sight (dedup)."""
    return user_tag(user) + ":e"


def user_keys(user: UserRef) -> list[str]:
    """Every key holding this user's data (for export and erasure)."""
    return [user_profile(user), user_seen_events(user)]


CONFIG_VERSION = "{cfg}:version"
ADVERTISERS, AUDIENCES, CAMPAIGNS, PUBLISHERS, API_KEYS = (
    "advertisers",
    "audiences",
    "campaigns",
    "publishers",
    "api_keys",  # id is the SHA-256 of the key: keys themselves are never stored
)
CONFIG_FAMILIES = (ADVERTISERS, AUDIENCES, CAMPAIGNS, PUBLISHERS, API_KEYS)


def config_family(family: str) -> str:
    """Hash of one configuration family: id -> JSON."""
    return "{cfg}:" + family


def membership_field(audience_id: str) -> str:
    return "m:" + audience_id


def last_purchase_field(advertiser_id: str) -> str:
    return "p:" + advertiser_id
