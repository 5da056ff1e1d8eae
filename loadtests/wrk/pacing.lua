-- Shared by the bench scripts: with BENCH_RATE (requests/s over all connections), an open
-- loop at that rate, as wrk2 paces: request i is due at start + i / rate, whichever
-- connection is free sends it, and one that falls behind sends at once to catch up.
-- A fixed delay per connection instead fires every connection in lockstep: "half load"
-- becomes one burst of all connections after another, and its p99 the time to drain one.
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
if rate > 0 then
    local ffi = require("ffi")
    ffi.cdef[[
        typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
        int clock_gettime(int clock_id, bench_timespec *tp);
    ]]
    local now = ffi.new("bench_timespec")
    local function now_ms()
        ffi.C.clock_gettime(1, now) -- CLOCK_MONOTONIC
        return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
    end
    local interval, slot = 1000 / rate, nil
    delay = function()
        local t = now_ms()
        slot = slot or t
        local wait = slot - t
        slot = slot + interval
        return wait > 0 and math.floor(wait + 0.5) or 0
    end
end
