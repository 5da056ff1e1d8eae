"""API keys and what they may do: admin, one advertiser's, or one publisher's."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from retarget.errors import Forbidden


class Role(StrEnum):
    ADMIN = "admin"
    ADVERTISER = "advertiser"
    PUBLISHER = "publisher"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin, or the owner (advertiser or publisher) of a key."""

    role: Role
    owner_id: str | None = None

    def require_admin(self) -> None:
        if self.role is not Role.ADMIN:
            raise Forbidden("only the admin token may do this", field="Authorization")

    def require_advertiser(self, advertiser_id: str) -> None:
        """Admin, or that advertiser's own key."""
        if self.role is Role.ADMIN:
            return
        if self.role is not Role.ADVERTISER or self.owner_id != advertiser_id:
            raise Forbidden("this key may not act for that advertiser", field="Authorization")

    def require_publisher(self, publisher_id: str) -> None:
        """Admin, or that publisher's own key."""
        if self.role is Role.ADMIN:
            return
        if self.role is not Role.PUBLISHER or self.owner_id != publisher_id:
            raise Forbidden("this key may not act for that publisher", field="Authorization")


class StoredKey(BaseModel):
    """What we keep of a key: never the key, only its owner (stored under its hash)."""

    model_config = ConfigDict(frozen=True)

    role: Role
    owner_id: str
    prefix: str  # the first characters, so an operator can tell keys apart


def new_key(role: Role) -> str:
    return f"rt_{role.value[:3]}_" + secrets.token_urlsafe(32)


@functools.lru_cache(maxsize=4096)
def key_hash(key: str) -> str:
    """SHA-256: keys are 256 random bits, so a slow password hash would add nothing.
    Cached: a publisher sends the same key with every decision."""
    return hashlib.sha256(key.encode()).hexdigest()
