-- lib/series.lua: a deal's counts per minute, for the console's line chart (GET
-- /v1/deals/<id>/series; inlined where a script says "--#include series").
--
-- series:<deal> (one per shard, summed on read) holds "<metric>:<minute>" fields,
-- minute = epoch seconds // 60 on the notifier's clock, metric one of sent,
-- delivered, clicked, redeemed. The key lives SERIES_KEEP_S after the deal expires
-- (ttl_s: seconds the deal has left; 0 when the script does not know it), or after
-- the last count when that is later: a count only ever lengthens the TTL, so the
-- key never outlives the deal and its last count by more than SERIES_KEEP_S.
local SERIES_KEEP_S = 7 * 86400
local series_renewed = {}

local function series_add(key, metric, now_s, ttl_s)
  if key == '' then return end
  local now = tonumber(now_s)
  if not now then return end
  redis.call('HINCRBY', key, metric .. ':' .. math.floor(now / 60), 1)
  if not series_renewed[key] then
    series_renewed[key] = true
    local want = math.max(tonumber(ttl_s) or 0, 0) + SERIES_KEEP_S
    if redis.call('TTL', key) < want then
      redis.call('EXPIRE', key, want)
    end
  end
end

-- The same, for a script that counts many events in one call (record.lua): counts
-- gathered per (key, field) and written by series_flush() at the end, one HINCRBY
-- each, so that a batch of pushes sent in one minute costs one command, not one a
-- push. The TTL as series_add, once per key and call.
local series_pending, series_keys = {}, {}

local function series_count(key, metric, now_s, ttl_s)
  if key == '' then return end
  local now = tonumber(now_s)
  if not now then return end
  local t = series_pending[key]
  if not t then
    t = { ttl = 0, n = {} }
    series_pending[key] = t
    series_keys[#series_keys + 1] = key
  end
  local f = metric .. ':' .. math.floor(now / 60)
  t.n[f] = (t.n[f] or 0) + 1
  t.ttl = math.max(t.ttl, tonumber(ttl_s) or 0)
end

local function series_flush()
  for _, key in ipairs(series_keys) do
    local t = series_pending[key]
    for f, n in pairs(t.n) do
      redis.call('HINCRBY', key, f, n)
    end
    local want = math.max(t.ttl, 0) + SERIES_KEEP_S
    if redis.call('TTL', key) < want then
      redis.call('EXPIRE', key, want)
    end
  end
  series_pending, series_keys = {}, {}
end
