"""The app under a real uvicorn, in the test's event loop, as ``retarget serve`` runs it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn

from retarget.app import create_app
from retarget.clock import FrozenClock
from retarget.embedded_redis import free_port
from retarget.settings import Settings
from retarget.workers import SERVER_SETTINGS


@contextlib.asynccontextmanager
async def running(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """The app under uvicorn on a free loopback port, in this event loop; an HTTP client."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, clock=clock),
        host="127.0.0.1",
        port=port,
        **{**SERVER_SETTINGS, "loop": "asyncio"},
        lifespan="on",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if serving.done():
                    serving.result()  # raises what stopped the startup
                await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):  # a clean shutdown takes well under a second
            await serving
