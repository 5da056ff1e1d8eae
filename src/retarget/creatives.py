"""Creatives: what an ad shows. Advertisers give fields, never markup; we render and escape."""

from __future__ import annotations

import re
import secrets
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from retarget import macros


class Format(StrEnum):
    BANNER = "banner"
    NATIVE = "native"
    VIDEO = "video"


_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _absolute_http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if _CONTROL.search(url):
        raise ValueError("must not contain spaces or control characters")
    return url


HttpUrl = Annotated[str, Field(max_length=2048), AfterValidator(_absolute_http_url)]
Pixels = Annotated[int, Field(ge=1, le=4096)]


# Text that may hold {product} / {category} macros.
AltText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(macros.check)]
Title = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(macros.check)]
Body = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(macros.check)]
CallToAction = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(macros.check)]


class _Creative(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = Field(
        default_factory=lambda: "cr_" + secrets.token_hex(5)
    )
    name: Annotated[str, Field(max_length=200)] = ""
    landing_url: HttpUrl = Field(description="Where a click goes: absolute http(s) only.")


class Banner(_Creative):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "banner",
                    "width": 300,
                    "height": 250,
                    "image_url": "https://books.example.com/ads/300x250.png",
                    "alt_text": "Still thinking about {product|our new arrivals}?",
                    "landing_url": "https://books.example.com/",
                }
            ]
        }
    )

    type: Literal["banner"] = "banner"
    width: Pixels
    height: Pixels
    image_url: HttpUrl
    alt_text: AltText


class Native(_Creative):
    type: Literal["native"] = "native"
    title: Title
    body: Body
    image_url: HttpUrl
    call_to_action: CallToAction = "Shop again"


class Video(_Creative):
    type: Literal["video"] = "video"
    media_url: HttpUrl
    mime_type: Literal["video/mp4", "video/webm", "application/x-mpegURL"] = "video/mp4"
    duration_seconds: Annotated[int, Field(ge=1, le=600)]
    width: Pixels
    height: Pixels


Creative = Annotated[Banner | Native | Video, Field(discriminator="type")]


def creative_format(creative: Banner | Native | Video) -> Format:
    return Format(creative.type)
