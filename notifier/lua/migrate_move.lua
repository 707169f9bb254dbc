-- migrate_move.lua: one whole key moved by dealpushctl migrate (stage: outside the
-- pipeline; docs/sharding.md section 4g).
-- KEYS[1] source   KEYS[2] destination (one Redis: the two may be in other slots)
-- ARGV[1] how:
--   "move": the destination becomes the source (DUMP/RESTORE REPLACE, its TTL kept);
--   "sum":  counters (stats, report:*): moved when the destination does not exist,
--           else every field of the source added to the destination's (integers with
--           HINCRBY, anything else with HINCRBYFLOAT);
--   "max":  a counter string: the larger of the two numbers;
--   "maxid": a stream id string ("<ms>-<seq>"): the later of the two;
--   "keep": moved when the destination does not exist, else the destination kept
--           (markers of which every shard held the same copy: order:, status_seen:);
--   "deal": a shard's copy of deal:<id> into the one deal hash: moved when the
--           destination does not exist, else "recipients", "jobs" and "ab_released"
--           added, "planned" kept only when both have it (a deal is planned once
--           every shard has planned it: the single reader plans the rest again, its
--           planset skipping who has a job), any other field kept where set.
-- The source is deleted in the same step, so a migration killed between two calls
-- never counts a key twice and a call run again finds the source gone.
-- Returns 1 when the source was there, 0 when not.
local src, dst, how = KEYS[1], KEYS[2], ARGV[1]

if redis.call('EXISTS', src) == 0 then
  return 0
end

local function move()
  local ttl = redis.call('PTTL', src)
  if ttl < 0 then
    ttl = 0
  end
  redis.call('RESTORE', dst, ttl, redis.call('DUMP', src), 'REPLACE')
end

local function idnum(v)
  local ms, seq = string.match(v or '', '^(%d+)-(%d+)$')
  return tonumber(ms or '-1'), tonumber(seq or '-1')
end

if how == 'move' or redis.call('EXISTS', dst) == 0 then
  move()
elseif how == 'sum' then
  local h = redis.call('HGETALL', src)
  for i = 1, #h, 2 do
    if string.match(h[i + 1], '^-?%d+$') then
      redis.call('HINCRBY', dst, h[i], h[i + 1])
    else
      redis.call('HINCRBYFLOAT', dst, h[i], h[i + 1])
    end
  end
elseif how == 'deal' then
  local h = redis.call('HGETALL', src)
  local sum = { recipients = true, jobs = true, ab_released = true }
  local planned = false
  for i = 1, #h, 2 do
    if sum[h[i]] then
      redis.call('HINCRBY', dst, h[i], h[i + 1])
    elseif h[i] == 'planned' then
      planned = true
    else
      redis.call('HSETNX', dst, h[i], h[i + 1])
    end
  end
  if not planned then
    redis.call('HDEL', dst, 'planned')
  end
elseif how == 'max' then
  local a, b = tonumber(redis.call('GET', src)), tonumber(redis.call('GET', dst))
  if a and (not b or a > b) then
    move()
  end
elseif how == 'maxid' then
  local am, as = idnum(redis.call('GET', src))
  local bm, bs = idnum(redis.call('GET', dst))
  if am > bm or (am == bm and as > bs) then
    move()
  end
end
redis.call('DEL', src)
return 1
