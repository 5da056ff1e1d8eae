-- Choose and record one ad decision for one user, atomically: read memberships and
-- frequency history, walk the ranked candidates, check every user-dependent rule, record
-- the impressions of the winners. Caps count here, at decision time, because this is the
-- only place where concurrent requests for one user are serialised: counting later (at
-- impression time) would let parallel tabs overshoot a cap.
--
-- KEYS[1]  user profile hash   {u:..}:p   m:<audience> -> "<since>:<expires>", p:<advertiser> -> JSON
-- KEYS[2]  frequency hash      {u:..}:f   <campaign> -> "<count>;<ts>,<ts>,..." (all-time
--          impressions, for creative rotation; then recent ones, ascending unix seconds)
-- ARGV[1]  now (unix seconds, from the app's clock)
-- ARGV[2]  number of placements (slots), at most 10
-- ARGV[3]  "1" to check and explain every candidate, else "0" (check only those the
--          user's audiences unlock)
-- ARGV[4]  candidates blocked right now (out of flight, budget, pacing): 0-based ranks
--          "i,j,..." or ""
-- ARGV[5]  audience index: "\n<audience>\t<rank>:<offset>:<length>,...\n" per audience
-- ARGV[6]  candidate lines, best rank first, located by offset and length (1-based bytes):
--          campaign \t advertiser \t audience:delay_seconds,... \t excluded,...
--          \t impressions:seconds,... \t min_interval_seconds \t repeat(0|1) \t slot bitmask
--          (bit s-1 set: the campaign fits slot s)
-- A large plan's own copy of this script (store/decisions.py, plan_script) has ARGV[5] and
-- ARGV[6] in its source, on the line that reads them below, and gets ARGV[1] to ARGV[4].
--
-- Returns { winners, explain }:
--   winners: per slot i, { campaign, prior impressions of it, last purchase JSON or "" }
--            or {} when the slot has no ad
--   explain: flat list of campaign, reason (only with ARGV[3] == "1")
-- Writes only KEYS[2], only when something won; a user with no live membership costs one
-- HGETALL.

local now = tonumber(ARGV[1])
local slots = tonumber(ARGV[2])
local explain = ARGV[3] == "1"

local since = {}
local purchases = {}
local profile = redis.call("HGETALL", KEYS[1])
local any = false
for i = 1, #profile, 2 do
    local name, value = profile[i], profile[i + 1]
    local kind = string.sub(name, 1, 2)
    if kind == "m:" then
        local s, e = string.match(value, "^(%d+):(%d+)$")
        if tonumber(e) > now then
            since[string.sub(name, 3)] = tonumber(s)
            any = true
        end
    elseif kind == "p:" then
        purchases[string.sub(name, 3)] = value
    end
end

local winners = {}
local reasons = {}
for i = 1, slots do winners[i] = {} end
-- Split on a one-character separator, keeping empty fields ("a\t\tb" has three).
local function split(text, sep)
    local out = {}
    if text == nil or text == "" then return out end
    local start = 1
    while true do
        local stop = string.find(text, sep, start, true)
        if not stop then
            table.insert(out, string.sub(text, start))
            return out
        end
        table.insert(out, string.sub(text, start, stop - 1))
        start = stop + 1
    end
end

local index, lines = ARGV[5], ARGV[6]

local function reject(campaign, reason)
    if explain then
        table.insert(reasons, campaign)
        table.insert(reasons, reason)
    end
end

-- Which candidates to check, best rank first: every line when explaining, else those an
-- audience of the user unlocks (the rest cannot win: they need an audience the user lacks).
local todo = {}
if explain then
    local start, rank = 1, 1
    while start <= #lines do
        local stop = string.find(lines, "\n", start, true)
        table.insert(todo, { rank, start, stop - start })
        start, rank = stop + 1, rank + 1
    end
elseif any then
    local seen = {}
    for audience in pairs(since) do
        local _, found = string.find(index, "\n" .. audience .. "\t", 1, true)
        if found then
            local stop = string.find(index, "\n", found + 1, true)
            local entries = string.sub(index, found + 1, stop - 1)
            for rank, offset, length in string.gmatch(entries, "(%d+):(%d+):(%d+)") do
                rank = tonumber(rank)
                if not seen[rank] then
                    seen[rank] = true
                    table.insert(todo, { rank, tonumber(offset), tonumber(length) })
                end
            end
        end
    end
    table.sort(todo, function(a, b) return a[1] < b[1] end)
end
if #todo == 0 then
    return { winners, reasons }
end
local blocked = {}
for i in string.gmatch(ARGV[4], "%d+") do blocked[tonumber(i) + 1] = true end

local history = {}     -- campaign -> list of impression times (ascending)
local counts = {}      -- campaign -> all impressions of it to this user
local longest = {}     -- campaign -> { window, most } kept in history
local changed = {}     -- campaigns whose history gained an impression
local used = {}
local open = slots

for _, entry in ipairs(todo) do
    local spec = split(string.sub(lines, entry[2], entry[2] + entry[3] - 1), "\t")
    local campaign, advertiser = spec[1], spec[2]
    if open == 0 then
        if explain then reject(campaign, "outranked") else break end
    elseif blocked[entry[1]] then
        -- its in-process reason (flight, budget, pacing) is already known to the caller
    else
        local mask = tonumber(spec[8])

        -- In an included audience, past its delay; in no excluded one.
        local verdict = "not_in_audience"
        for _, entry in ipairs(split(spec[3], ",")) do
            local audience, delay = string.match(entry, "^(.+):(%d+)$")
            local joined = since[audience]
            if joined then
                if joined + tonumber(delay) <= now then
                    verdict = nil
                    break
                end
                verdict = "in_delay_window"
            end
        end
        if verdict == nil then
            for _, audience in ipairs(split(spec[4], ",")) do
                if since[audience] then verdict = "excluded_audience" break end
            end
        end

        if verdict then
            reject(campaign, verdict)
        else
            local caps = split(spec[5], ",")
            local min_interval = tonumber(spec[6])
            local repeatable = spec[7] == "1"
            if not history[campaign] then
                local stored = redis.call("HGET", KEYS[2], campaign) or "0;"
                local count, recent = string.match(stored, "^(%d+);(.*)$")
                history[campaign] = {}
                counts[campaign] = tonumber(count) or 0
                for _, t in ipairs(split(recent or "", ",")) do
                    table.insert(history[campaign], tonumber(t))
                end
            end
            local times = history[campaign]
            -- History kept: what the caps and the interval can see (and at least a day, so
            -- creatives rotate), at most as many impressions as the largest cap allows.
            local window, most = math.max(min_interval, 86400), 16
            for _, cap in ipairs(caps) do
                local limit, seconds = string.match(cap, "^(%d+):(%d+)$")
                window = math.max(window, tonumber(seconds))
                most = math.max(most, tonumber(limit))
            end
            longest[campaign] = { window, most }

            for slot = 1, slots do
                if winners[slot][1] == nil and bit.band(mask, bit.lshift(1, slot - 1)) ~= 0 then
                    local why = nil
                    if used[campaign] and not repeatable then
                        why = "already_in_request"
                    elseif #times > 0 and times[#times] + min_interval > now then
                        why = "min_interval"
                    else
                        for _, cap in ipairs(caps) do
                            local limit, seconds = string.match(cap, "^(%d+):(%d+)$")
                            local count = 0
                            for k = #times, 1, -1 do
                                if times[k] > now - tonumber(seconds) then count = count + 1 else break end
                            end
                            if count >= tonumber(limit) then why = "frequency_capped" break end
                        end
                    end
                    if why then
                        reject(campaign, why)
                        break
                    else
                        winners[slot] = { campaign, counts[campaign], purchases[advertiser] or "" }
                        counts[campaign] = counts[campaign] + 1
                        table.insert(times, now)
                        changed[campaign] = true
                        used[campaign] = true
                        open = open - 1
                    end
                end
            end
        end
    end
end

-- Record: keep only the impressions any cap or the interval can still see.
local ttl = 0
for campaign in pairs(changed) do
    local times, window, most = history[campaign], longest[campaign][1], longest[campaign][2]
    local keep = {}
    for k = math.max(1, #times - most + 1), #times do
        if times[k] > now - window then table.insert(keep, times[k]) end
    end
    redis.call("HSET", KEYS[2], campaign, counts[campaign] .. ";" .. table.concat(keep, ","))
    ttl = math.max(ttl, window)
end
if ttl > 0 and redis.call("TTL", KEYS[2]) < ttl then
    redis.call("EXPIRE", KEYS[2], ttl)
end
return { winners, reasons }
