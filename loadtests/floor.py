"""The floor: the least a decision or pixel server can do on this stack.

A raw ASGI application (no framework) served by the same uvicorn settings as the service.
``POST /v1/decisions`` reads the JSON body, makes one EVALSHA of a script comparable to
store/decide.lua on the same user's keys (read the profile, read and write the frequency
hash), and returns a fixed JSON body. ``GET /px/<id>.gif`` makes one EVALSHA comparable to
store/record_event.lua and returns the GIF. Run, served as the service is, with
``FLOOR_REDIS_URL`` set: ``python -m retarget.workers loadtests.floor:app --workers N``.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

import orjson
from redis.asyncio import Redis

from retarget.pixel import GIF

DECIDE = """
local profile = redis.call("HGETALL", KEYS[1])
local history = redis.call("HGET", KEYS[2], ARGV[2])
redis.call("HSET", KEYS[2], ARGV[2], ARGV[1])
redis.call("EXPIRE", KEYS[2], 86400)
return #profile
"""
RECORD = """
if redis.call("ZADD", KEYS[2], "NX", ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call("HSET", KEYS[1], ARGV[3], ARGV[1] .. ":" .. ARGV[1])
redis.call("EXPIRE", KEYS[1], 2592000)
return 1
"""
_DECISION = b'{"decisions":{"feed":null}}'
_JSON = [(b"content-type", b"application/json")]
_GIF = [(b"content-type", b"image/gif"), (b"cache-control", b"no-store")]

redis = Redis.from_url(os.environ.get("FLOOR_REDIS_URL", "unix:///tmp/redis.sock"))
decide = redis.register_script(DECIDE)
record = redis.register_script(RECORD)


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["method"] == "POST":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        user = orjson.loads(body)["user"]["id"]
        tag = "{u:c:" + user + "}"
        await decide(keys=[tag + ":p", tag + ":f"], args=[1, "cmp_floor"])
        payload, headers = _DECISION, _JSON
    else:
        query = parse_qs(scope["query_string"].decode())
        user = query.get("u", ["anonymous"])[0]
        tag = "{u:c:" + user + "}"
        oid = query.get("oid", [""])[0]
        await record(keys=[tag + ":p", tag + ":e"], args=[1, "adv:" + oid, "m:aud_floor"])
        payload, headers = GIF, _GIF
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
