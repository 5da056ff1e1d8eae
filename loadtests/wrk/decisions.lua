-- POST /v1/decisions for users drawn from a file of ids (BENCH_USERS); pacing.lua paces it.
-- BENCH_DOMAIN and BENCH_PLACEMENT name the site and the placement (default: bench.py's).
local users = {}
for line in io.lines(os.getenv("BENCH_USERS")) do users[#users + 1] = line end
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
