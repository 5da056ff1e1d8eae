-- POST /v1/decisions for users drawn from a file of ids (BENCH_USERS), at an optional
-- steady rate (BENCH_DELAY_MS between one connection's requests: a paced closed loop).
-- BENCH_DOMAIN and BENCH_PLACEMENT name the site and the placement (default: bench.py's).
local users = {}
for line in io.lines(os.getenv("BENCH_USERS")) do users[#users + 1] = line end
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or ""),
}
local domain = os.getenv("BENCH_DOMAIN") or "social.example.com"
local placement = os.getenv("BENCH_PLACEMENT") or "feed"
math.randomseed(os.time())

request = function()
    local id = users[math.random(#users)]
    local body = '{"user":{"id":"' .. id .. '","namespace":"cookie"},' ..
        '"site":{"domain":"' .. domain .. '"},"placements":[{"id":"' .. placement .. '"}]}'
    return wrk.format("POST", "/v1/decisions", headers, body)
end

if delay_ms > 0 then
    delay = function() return delay_ms end
end
