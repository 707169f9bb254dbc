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

-- The TTL of key: SERIES_KEEP_S past the deal's end (ttl_s: the seconds it has left, 0
-- when not known), only ever lengthened; once per key and call, after its counts.
local function series_ttl(key, ttl_s)
  if series_renewed[key] then return end
  series_renewed[key] = true
  local want = math.max(tonumber(ttl_s) or 0, 0) + SERIES_KEEP_S
  if redis.call('TTL', key) < want then
    redis.call('EXPIRE', key, want)
  end
end

-- The field of metric at now_s (epoch s), or nil when now_s is no number.
local function series_field(metric, now_s)
  local now = tonumber(now_s)
  return now and (metric .. ':' .. math.floor(now / 60)) or nil
end

-- One event counted in key ("" = none).
local function series_add(key, metric, now_s, ttl_s)
  local f = key ~= '' and series_field(metric, now_s)
  if not f then return end
  redis.call('HINCRBY', key, f, 1)
  series_ttl(key, ttl_s)
end
