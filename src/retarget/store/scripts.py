"""Loads the ``*.lua`` files beside this module, for redis-py (``Script``) or the hot paths'
auto-pipeline (``LuaScript``); both call EVALSHA and fall back to EVAL after a Redis restart."""

from __future__ import annotations

from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from retarget.store.autopipeline import LuaScript


def script_source(name: str) -> str:
    return files("retarget.store").joinpath(f"{name}.lua").read_text()


def load_script(redis: Redis, name: str) -> AsyncScript:
    """EVALSHA on every call, falling back to EVAL once after a Redis restart (NOSCRIPT)."""
    return redis.register_script(script_source(name))


def lua_script(name: str) -> LuaScript:
    return LuaScript(script_source(name))
