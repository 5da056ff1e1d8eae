-- Count an impression or a click once per token, and remember it for attribution.
--
-- KEYS[1]  tracked zset    {u:..}:t   "<kind>:<decision>:<placement>" scored by first sight
-- KEYS[2]  user profile    {u:..}:p   gets c:<advertiser> / v:<advertiser> (last click / view)
-- ARGV[1]  now (unix seconds)
-- ARGV[2]  member "<kind>:<decision id>:<placement id>"
-- ARGV[3]  seconds to remember members (the tokens' lifetime)
-- ARGV[4]  last-touch field (c:<advertiser> or v:<advertiser>)
-- ARGV[5]  last-touch JSON, starting with {"ts":<now>
-- ARGV[6]  seconds to keep the profile at least (the attribution window)
--
-- Returns 1 the first time, 0 for a replay (nothing written).

local now = tonumber(ARGV[1])
if redis.call("ZADD", KEYS[1], "NX", now, ARGV[2]) == 0 then
    return 0
end
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now - tonumber(ARGV[3]))
redis.call("ZREMRANGEBYRANK", KEYS[1], 0, -1001)
redis.call("EXPIRE", KEYS[1], tonumber(ARGV[3]))

redis.call("HSET", KEYS[2], ARGV[4], ARGV[5])
if redis.call("TTL", KEYS[2]) < tonumber(ARGV[6]) then
    redis.call("EXPIRE", KEYS[2], tonumber(ARGV[6]))
end
return 1
