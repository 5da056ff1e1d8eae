"""Loads the ``*.lua`` files beside this module, for redis-py (``Script``) or the hot paths'
auto-pipeline (``LuaScript``); both call EVALSHA and fall back to EVAL after a Redis restart."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from importlib.resources import files
from typing import Any

from redis.exceptions import NoScriptError

from retarget.store.autopipeline import LuaScript
from retarget.store.client import RedisClient


def script_source(name: str) -> str:
    return files("retarget.store").joinpath(f"{name}.lua").read_text()


class Script:
    """One round trip per call: EVALSHA; on NOSCRIPT (a restarted or new node), EVAL.

    Not redis-py's ``register_script``: its NOSCRIPT fallback sends SCRIPT LOAD, which a
    cluster client sends to every master, so one dead master would stop a live one from
    running a script it had not cached yet. EVAL goes where EVALSHA went (the node owning
    the keys' slot) and caches the script there.
    """

    def __init__(self, redis: RedisClient, source: str) -> None:
        self._redis = redis
        self.script = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's script id

    async def __call__(self, keys: Sequence[str], args: Iterable[Any]) -> Any:
        try:
            return await self._redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self._redis.eval(self.script, len(keys), *keys, *args)


def load_script(redis: RedisClient, name: str) -> Script:
    """The script ``<name>.lua``, run on ``redis``."""
    return Script(redis, script_source(name))


def lua_script(name: str) -> LuaScript:
    return LuaScript(script_source(name))
