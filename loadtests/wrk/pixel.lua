-- GET /px/<pixel id>.gif purchases from users drawn from BENCH_USERS (as their rt_uid).
local users = {}
for line in io.lines(os.getenv("BENCH_USERS")) do users[#users + 1] = line end
local pixel = os.getenv("BENCH_PIXEL") or "px_floor"
local counter = 0
math.randomseed(os.time())

request = function()
    counter = counter + 1
    local id = users[math.random(#users)]
    local path = "/px/" .. pixel .. ".gif?cat=books&val=19.90&cur=EUR&oid=o" ..
        counter .. "-" .. math.random(1e9) .. "&u=" .. id
    -- A browser's user agent: without one the pixel serves the GIF but records nothing.
    return wrk.format("GET", path, { ["Cookie"] = "rt_uid=" .. id, ["User-Agent"] = "Mozilla/5.0 (wrk)" })
end
