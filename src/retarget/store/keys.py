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


def user_frequency(user: UserRef) -> str:
    """Hash: ``<campaign id>`` -> ``"<count>;<ts>,<ts>,..."``: all its impressions to the
    user, then those its caps still see (see store/decide.lua)."""
    return user_tag(user) + ":f"


def user_keys(user: UserRef) -> list[str]:
    """Every key holding this user's data (for export and erasure)."""
    return [user_profile(user), user_seen_events(user), user_frequency(user), user_tracked(user)]


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


def user_tracked(user: UserRef) -> str:
    """Sorted set of ``<imp|click>:<decision id>:<placement>`` already counted (replays)."""
    return user_tag(user) + ":t"


# Report counters: one hash per UTC day, field "metric|advertiser|campaign|creative|publisher|
# category". Written only by the workers' periodic flush, never per request.
STATS_TTL = 400 * 86_400


def stats(day: str) -> str:
    return "{stats}:" + day


# Budget spend per campaign: all time, and per UTC day.
SPEND_TOTAL = "{spend}:total"


def spend_day(day: str) -> str:
    return "{spend}:" + day


def last_touch_field(kind: str, advertiser_id: str) -> str:
    """Profile field of the last ``click`` or ``view`` of an advertiser's ad (attribution)."""
    return ("c:" if kind == "click" else "v:") + advertiser_id
