"""Who a user is: an id in one of three namespaces that never mix."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

from retarget.errors import InvalidInput


class Namespace(StrEnum):
    COOKIE = "cookie"  # our rt_uid
    EMAIL = "email"  # SHA-256 hex of a normalised (trimmed, lower-cased) e-mail address
    MAID = "maid"  # mobile advertising id (IDFA / GAID), a UUID


COOKIE_NAME = "rt_uid"
COOKIE_MAX_AGE = 365 * 24 * 3600

_COOKIE_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class UserRef:
    namespace: Namespace
    id: str


def new_cookie_id() -> str:
    """128 random bits, URL-safe base64 without padding (22 characters)."""
    return secrets.token_urlsafe(16)


def cookie_id_or_none(raw: str | None) -> str | None:
    """The cookie's id if it is one we could have issued, else None (a new one is issued)."""
    return raw if raw is not None and _COOKIE_ID.fullmatch(raw) else None


def parse_user(namespace: Namespace | str, raw_id: str) -> UserRef:
    """Validate an id for its namespace and return it in canonical form."""
    try:
        ns = namespace if isinstance(namespace, Namespace) else Namespace(namespace)
    except ValueError:
        raise InvalidInput(
            "namespace must be one of cookie, email, maid", field="namespace"
        ) from None
    if ns is Namespace.COOKIE:
        if cookie_id_or_none(raw_id) is None:
            raise InvalidInput("not an rt_uid (22 URL-safe characters)", field="id")
        return UserRef(ns, raw_id)
    if ns is Namespace.EMAIL:
        lowered = raw_id.lower()
        if not _SHA256_HEX.fullmatch(lowered):
            raise InvalidInput("must be the SHA-256 hex digest of the e-mail address", field="id")
        return UserRef(ns, lowered)
    try:
        return UserRef(ns, str(uuid.UUID(raw_id)))
    except ValueError:
        raise InvalidInput("a mobile advertising id is a UUID", field="id") from None
