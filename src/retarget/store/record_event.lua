-- Record one event for one user: dedup, audience memberships, last purchase, TTLs, and
-- for a purchase the user's last click and view of the advertiser's ads (attribution).
--
-- KEYS[1]  user profile hash   {u:..}:p   m:<audience> -> "<since>:<expires>", p:<advertiser> -> JSON
-- KEYS[2]  seen events zset    {u:..}:e   "<advertiser>:<id>" scored by first sight
-- ARGV[1]  now (unix seconds, from the app's clock)
-- ARGV[2]  dedup member, "" when the event carries no id
-- ARGV[3]  dedup window in seconds (how long ids are remembered)
-- ARGV[4]  most fields the profile may hold (oldest memberships dropped first)
-- ARGV[5]  last-purchase field, "" when the event is not a purchase
-- ARGV[6]  last-purchase JSON, starting with {"ts":<unix seconds>
-- ARGV[7]  seconds to keep a profile that has no membership left
-- ARGV[8]  last-click field c:<advertiser>, "" when the event is not a purchase
-- ARGV[9]  last-view field v:<advertiser>, "" when the event is not a purchase
-- ARGV[10..] triples: membership field, since, expires (unix seconds)
--
-- Returns 0 when the dedup member was already seen (nothing written); 1 when recorded;
-- for a recorded purchase {1, last click JSON or "", last view JSON or ""} instead, so the
-- caller can credit a conversion without another round trip. The touches stay: every
-- purchase inside a window is a conversion.
-- Memberships only move forward: the later "since" (a new purchase restarts delay_days)
-- and the later expiry win, so out-of-order events cannot shorten a membership.

local now = tonumber(ARGV[1])
local window = tonumber(ARGV[3])

if ARGV[2] ~= "" then
    if redis.call("ZADD", KEYS[2], "NX", now, ARGV[2]) == 0 then
        return 0
    end
    redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now - window)
    redis.call("ZREMRANGEBYRANK", KEYS[2], 0, -1001)  -- keep the newest 1000 ids
    redis.call("EXPIRE", KEYS[2], window)
end

local keep_until = now + tonumber(ARGV[7])
for i = 10, #ARGV, 3 do
    local field, since, expires = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
    local old = redis.call("HGET", KEYS[1], field)
    if old then
        local old_since, old_expires = string.match(old, "^(%d+):(%d+)$")
        since = math.max(since, tonumber(old_since))
        expires = math.max(expires, tonumber(old_expires))
    end
    redis.call("HSET", KEYS[1], field, since .. ":" .. expires)
    keep_until = math.max(keep_until, expires)
end
if ARGV[5] ~= "" then
    -- Keep the latest purchase: a late, older event must not replace it.
    local stored = redis.call("HGET", KEYS[1], ARGV[5])
    local stored_ts = stored and tonumber(string.match(stored, '^{"ts":(%d+)')) or -1
    if tonumber(string.match(ARGV[6], '^{"ts":(%d+)')) >= stored_ts then
        redis.call("HSET", KEYS[1], ARGV[5], ARGV[6])
    end
end

-- Bound the profile: drop expired memberships, then the oldest fields, until it fits.
local limit = tonumber(ARGV[4])
if redis.call("HLEN", KEYS[1]) > limit then
    local fields = redis.call("HGETALL", KEYS[1])
    local by_age = {}
    for i = 1, #fields, 2 do
        local name, value = fields[i], fields[i + 1]
        local since, expires
        if string.sub(name, 1, 2) == "m:" then
            since, expires = string.match(value, "^(%d+):(%d+)$")
        else
            since = string.match(value, '^{"ts":(%d+)')
        end
        since = tonumber(since) or 0
        if expires and tonumber(expires) <= now then
            redis.call("HDEL", KEYS[1], name)
        else
            table.insert(by_age, {since, name})
        end
    end
    table.sort(by_age, function(a, b) return a[1] < b[1] end)
    for i = 1, #by_age - limit do
        redis.call("HDEL", KEYS[1], by_age[i][2])
    end
end

local ttl = redis.call("TTL", KEYS[1])
local wanted = keep_until - now
if wanted > ttl then
    redis.call("EXPIRE", KEYS[1], wanted)
end
if ARGV[8] ~= "" then
    local click = redis.call("HGET", KEYS[1], ARGV[8]) or ""
    local view = redis.call("HGET", KEYS[1], ARGV[9]) or ""
    return {1, click, view}
end
return 1
