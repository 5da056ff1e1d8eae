"""Publishers: the partner sites and apps whose ad slots ask us for ads."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from retarget.advertisers import Domain, Name
from retarget.creatives import Format, Pixels


class SiteCategory(StrEnum):
    SOCIAL = "social"
    GAMES = "games"
    VIDEO = "video"
    PHOTO = "photo"
    NEWS = "news"
    OTHER = "other"


Size = tuple[Pixels, Pixels]
PlacementId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: PlacementId
    format: Format
    sizes: list[Size] = Field(default_factory=list, max_length=20)


class PublisherFields(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "Friends Feed",
                    "domain": "social.example.com",
                    "site_category": "social",
                    "placements": [
                        {"id": "feed", "format": "banner", "sizes": [[300, 250]]},
                        {"id": "preroll", "format": "video", "sizes": [[640, 360]]},
                    ],
                }
            ]
        },
    )

    name: Name
    domain: Domain
    site_category: SiteCategory
    placements: list[Placement] = Field(default_factory=list, max_length=100)

    @field_validator("placements")
    @classmethod
    def _placement_ids_are_unique(cls, placements: list[Placement]) -> list[Placement]:
        ids = [p.id for p in placements]
        if len(ids) != len(set(ids)):
            raise ValueError("placement ids must be unique")
        return placements


class PublisherUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"site_category": "games"}]}
    )

    name: Name | None = None
    domain: Domain | None = None
    site_category: SiteCategory | None = None
    placements: list[Placement] | None = Field(None, max_length=100)


class Publisher(PublisherFields):
    id: str
    created_at: datetime

    def placement(self, placement_id: str) -> Placement | None:
        return next((p for p in self.placements if p.id == placement_id), None)


def new_publisher(fields: PublisherFields, now: float) -> Publisher:
    return Publisher(
        id="pub_" + secrets.token_hex(6),
        created_at=datetime.fromtimestamp(now, UTC),
        **dict(fields),
    )
