"""Loads the ``*.lua`` files beside this module as redis-py Script objects (EVALSHA)."""

from __future__ import annotations

from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def load_script(redis: Redis, name: str) -> AsyncScript:
    """EVALSHA on every call, falling back to EVAL once after a Redis restart (NOSCRIPT)."""
    source = files("retarget.store").joinpath(f"{name}.lua").read_text()
    return redis.register_script(source)
