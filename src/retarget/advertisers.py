"""Advertisers: the shops whose buyers we bring back."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_HOSTNAME = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


def _hostname(value: str) -> str:
    lowered = value.strip().lower().rstrip(".")
    if not _HOSTNAME.fullmatch(lowered):
        raise ValueError("must be a domain name such as shop.example.com")
    return lowered


Domain = Annotated[str, AfterValidator(_hostname)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class AdvertiserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Book Shop", "domain": "books.example.com"}]},
    )

    name: Name
    domain: Domain = Field(description="The shop's site, e.g. shop.example.com.")


class AdvertiserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Books"}]})

    name: Name | None = None
    domain: Domain | None = None


class Advertiser(BaseModel):
    """Stored form. ``s2s_secret`` signs server-to-server events and is never listed."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    domain: str
    pixel_id: str
    s2s_secret: str
    created_at: datetime


def new_advertiser(create: AdvertiserCreate, now: float) -> Advertiser:
    return Advertiser(
        id="adv_" + secrets.token_hex(6),
        name=create.name,
        domain=create.domain,
        pixel_id="px_" + secrets.token_hex(8),
        s2s_secret=new_secret(),
        created_at=datetime.fromtimestamp(now, UTC),
    )


def new_secret() -> str:
    return "s2s_" + secrets.token_urlsafe(32)
