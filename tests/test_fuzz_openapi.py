"""Schemathesis against our own OpenAPI document: every operation, a bounded number of
generated requests each (valid and invalid), as the admin so they reach the handlers.

Checks: no 5xx, every status code and content type is one the document declares, and every
JSON answer matches its declared schema. Generation is derandomized: CI runs the same
requests every time, so a failure here is a real, reproducible bug, not a flake.
"""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from redis import Redis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from retarget.app import create_app
from retarget.clock import FrozenClock
from retarget.embedded_redis import EmbeddedRedis
from retarget.settings import Settings
from tests.conftest import ADMIN_TOKEN, T0
from tests.helpers import create_campaign, open_shop, serving

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EXAMPLES_PER_OPERATION = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


async def seed(settings: Settings) -> None:
    """A shop with a campaign and a publisher, so generated requests that name no real id
    still meet a non-empty catalog."""
    async with serving(settings, FrozenClock(T0)) as client:
        shop = await open_shop(client)
        await create_campaign(client, shop.advertiser_id, [shop.audience_id])


@pytest.fixture(scope="module")
def live_app(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The service over a seeded Redis, shared by every operation's test (each of which
    starts and stops its lifespan: schemathesis does that)."""
    Redis.from_url(redis_server.url).flushall()
    settings = Settings(
        redis_url=redis_server.url,
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret-key",
        data_dir=tmp_path_factory.mktemp("fuzz"),
        decision_deadline_ms=2000,
    )
    asyncio.run(seed(settings))
    return create_app(settings)


# The document does not depend on settings: read it from an app that never starts.
# (Loaded here, not from a fixture: schemathesis's from_fixture breaks on pytest 9.2.)
_DOCUMENT = create_app(
    Settings(redis_url="redis://unused", admin_token="unused", secret_key="unused")
).openapi()
# The examples and fuzzing phases, valid and invalid data. Not the coverage phase (every
# boundary of every field): it takes minutes for ~40 operations on a CI machine.
schema = schemathesis.openapi.from_dict(
    _DOCUMENT, config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
)


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_5xx_or_an_answer_its_document_does_not_declare(
    case: schemathesis.Case, live_app: FastAPI
) -> None:
    case.call_and_validate(app=live_app, headers=ADMIN, checks=CHECKS)
