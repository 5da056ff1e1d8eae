-- Choose and record one ad decision for one user, atomically: read memberships and
-- frequency history, walk the ranked candidates, check every user-dependent rule, record
-- the impressions of the winners. Caps count here, at decision time, because this is the
-- only place where concurrent requests for one user are serialised: counting later (at
-- impression time) would let parallel tabs overshoot a cap.
--
-- KEYS[1]  user profile hash   {u:..}:p   m:<audience> -> "<since>:<expires>", p:<advertiser> -> JSON
-- KEYS[2]  frequency hash      {u:..}:f   <campaign> -> "<count>;<ts>,<ts>,..." (all-time
--          impressions, for creative rotation; then recent ones, ascending unix seconds,
--          each ten digits: until the year 2286, so the k-th sits at a known offset)
-- ARGV[1]  now (unix seconds, ten digits, from the app's clock)
-- ARGV[2]  number of placements (slots), at most 10
-- ARGV[3]  "1" to check and explain every candidate, else "0" (check only those the
--          user's audiences unlock)
-- ARGV[4]  candidates blocked right now (out of flight, budget, pacing): 0-based ranks
--          "i,j,..." or ""
-- ARGV[5]  audience index: "\n<audience>\t<rank>:<offset>,...\n" per audience
-- ARGV[6]  candidate lines, best rank first, each starting at its offset (1-based bytes):
--          campaign \t advertiser \t audience:delay_seconds,... \t excluded,...
--          \t impressions:seconds,... \t min_interval_seconds \t repeat(0|1)
--          \t history_seconds \t history_most \t slot bitmask (bit s-1 set: fits slot s)
--          (history: how long and how many of a user's impressions of it to keep)
-- Every number in ARGV[4] to ARGV[6] is hexadecimal: tonumber(s, 16) is strtoul, while a
-- decimal tonumber(s) runs strtod twice, about 2,200 instructions a number.
-- A large plan's own copy of this script (store/decisions.py, plan_script) has ARGV[5] and
-- ARGV[6] in its source, on the line that reads them below, and gets ARGV[1] to ARGV[4].
--
-- Returns one flat list (each nested table costs Redis a conversion of its own): per slot
-- campaign, prior impressions of it, last purchase JSON or "" (campaign "" when the slot
-- has no ad); then, only with ARGV[3] == "1", campaign, reason for each candidate refused.
-- Writes only KEYS[2], only when something won; a user with no live membership costs one
-- HGETALL.

-- Redis keeps no Lua state between calls and runs this on its one thread, so each call
-- should allocate little: every string, table and closure is a malloc and later GC work
-- (under load, about a third of redis-server's CPU). Hence fields read in place by one
-- pattern, impression times compared inside their stored string (one probe per cap, not a
-- number per impression), and library functions kept in locals.
local find, sub, match, gmatch = string.find, string.sub, string.match, string.gmatch
local byte = string.byte
local tonumber, sort, max = tonumber, table.sort, math.max
local band, lshift, call = bit.band, bit.lshift, redis.call

local now_text = ARGV[1]
assert(#now_text == 10, "now must be ten-digit unix seconds")
local now = tonumber(now_text)
local slots = tonumber(ARGV[2])
local explain = ARGV[3] == "1"

local since = {}
local profile = call("HGETALL", KEYS[1])
local any = false
for i = 1, #profile, 2 do
    local name = profile[i]
    if byte(name, 1) == 109 and byte(name, 2) == 58 then  -- "m:"
        local s, e = match(profile[i + 1], "^(%d+):(%d+)$")
        if tonumber(e) > now then
            since[sub(name, 3)] = tonumber(s)
            any = true
        end
    end
end

-- The reply: per slot campaign ("" while open), prior impressions, advertiser (its last
-- purchase at the end); then the reasons.
local reply = {}
for slot = 1, slots do reply[3 * slot - 2], reply[3 * slot - 1], reply[3 * slot] = "", 0, "" end
local function reject(campaign, reason)
    if explain then
        reply[#reply + 1] = campaign
        reply[#reply + 1] = reason
    end
end

local index, lines = ARGV[5], ARGV[6]

-- Which candidates to check, best rank first: every line when explaining, else those an
-- audience of the user unlocks (the rest cannot win: they need an audience the user lacks).
local todo = {}        -- ranks, ascending
local offsets = {}     -- rank -> where its line starts in `lines`
if explain then
    local start, rank = 1, 1
    while start <= #lines do
        todo[rank], offsets[rank] = rank, start
        start, rank = find(lines, "\n", start, true) + 1, rank + 1
    end
elseif any then
    for audience in pairs(since) do
        local _, at = find(index, "\n" .. audience .. "\t", 1, true)
        while at and byte(index, at) ~= 10 do  -- up to the entry list's "\n"
            local rank, offset
            _, at, rank, offset = find(index, "^(%x+):(%x+)", at + 1)
            rank = tonumber(rank, 16)
            if not offsets[rank] then
                offsets[rank] = tonumber(offset, 16)
                todo[#todo + 1] = rank
            end
            at = at + 1  -- the "," or "\n" after it
        end
    end
    if #todo > 1 then sort(todo) end
end
if #todo == 0 then
    return reply
end
local blocked = {}
if ARGV[4] ~= "" then
    for i in gmatch(ARGV[4], "%x+") do blocked[tonumber(i, 16) + 1] = true end
end

-- A campaign's recent impressions: "<ts>,<ts>,...", each entry 11 bytes with its comma.
local function time_at(recent, k) return tonumber(sub(recent, 11 * k - 10, 11 * k - 1)) end

local LINE = "^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(%x+)\t([01])\t(%x+)\t(%x+)\t(%x+)"
-- campaign -> { count, recent, n, window, most }, once its history is read; window and most
-- (the history's bounds) are set once it wins a slot
local seen = {}
local won = {}         -- campaigns that won a slot, in order
local open = slots

for _, rank in ipairs(todo) do
    local campaign, advertiser, included, excluded, caps, min_interval, repeatable,
        window, most, mask = match(lines, LINE, offsets[rank])
    if open == 0 then
        if not explain then break end
        reject(campaign, "outranked")
    elseif blocked[rank] then
        -- its in-process reason (flight, budget, pacing) is already known to the caller
    else
        -- In an included audience, past its delay; in no excluded one.
        local verdict = "not_in_audience"
        for audience, delay in gmatch(included, "([^,]+):(%x+)") do
            local joined = since[audience]
            if joined then
                if joined + tonumber(delay, 16) <= now then
                    verdict = nil
                    break
                end
                verdict = "in_delay_window"
            end
        end
        if verdict == nil and excluded ~= "" then
            for audience in gmatch(excluded, "[^,]+") do
                if since[audience] then verdict = "excluded_audience" break end
            end
        end

        if verdict then
            reject(campaign, verdict)
        else
            min_interval = tonumber(min_interval, 16)
            local state = seen[campaign]
            if not state then
                local count, recent = match(call("HGET", KEYS[2], campaign) or "0;", "^(%d+);(.*)$")
                if recent == "" then recent = nil end
                state = { tonumber(count) or 0, recent or "", recent and (#recent + 1) / 11 or 0 }
                seen[campaign] = state
            end

            mask = tonumber(mask, 16)
            for slot = 1, slots do
                if reply[3 * slot - 2] == "" and band(mask, lshift(1, slot - 1)) ~= 0 then
                    local recent, n = state[2], state[3]
                    local why = nil
                    if state[4] and repeatable == "0" then
                        why = "already_in_request"
                    elseif n > 0 and time_at(recent, n) + min_interval > now then
                        why = "min_interval"
                    else
                        -- Capped when the limit-th latest impression is inside the window.
                        for limit, seconds in gmatch(caps, "(%x+):(%x+)") do
                            limit = tonumber(limit, 16)
                            local after = now - tonumber(seconds, 16)
                            if n >= limit and time_at(recent, n - limit + 1) > after then
                                why = "frequency_capped"
                                break
                            end
                        end
                    end
                    if why then
                        reject(campaign, why)
                        break
                    end
                    reply[3 * slot - 2], reply[3 * slot - 1] = campaign, state[1]
                    reply[3 * slot] = advertiser  -- its last purchase, at the end
                    state[1] = state[1] + 1
                    state[2] = n == 0 and now_text or recent .. "," .. now_text
                    state[3] = n + 1
                    if not state[4] then
                        state[4], state[5] = tonumber(window, 16), tonumber(most, 16)
                        won[#won + 1] = campaign
                    end
                    open = open - 1
                end
            end
        end
    end
end

-- Record: keep only the impressions any cap or the interval can still see.
local ttl = 0
for _, campaign in ipairs(won) do
    local state = seen[campaign]
    local recent, n, window, most = state[2], state[3], state[4], state[5]
    local first = max(1, n - most + 1)
    while time_at(recent, first) <= now - window do first = first + 1 end  -- the newest is now
    call("HSET", KEYS[2], campaign, state[1] .. ";" .. sub(recent, 11 * first - 10))
    ttl = max(ttl, window)
end
if ttl > 0 and call("TTL", KEYS[2]) < ttl then
    call("EXPIRE", KEYS[2], ttl)
end
-- The winners' last purchases, from the profile read above.
for slot = 1, slots do
    if reply[3 * slot - 2] ~= "" then
        local key, purchase = "p:" .. reply[3 * slot], ""
        for i = 1, #profile, 2 do
            if profile[i] == key then purchase = profile[i + 1] break end
        end
        reply[3 * slot] = purchase
    end
end
return reply
