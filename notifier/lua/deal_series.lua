-- deal_series.lua: a deal's counts per minute over a range, read in one step (stage:
-- report; GET /v1/deals/<id>/series). It only reads.
-- ORDER SERIES_KEYS (notifier/admin_series.c): KEYS[1] deal:<id> (shard 0's copy:
--   every shard plans every deal)
-- KEYS[2..] series:<id> of every shard (one in the single-instance layout; the
--   counts are their sum, docs/sharding.md)
-- ARGV: first minute, last minute (epoch s // 60, first <= last; the caller bounds
--   the span)
-- Returns {1 when the deal hash or any series key exists else 0, then for each
-- metric in ORDER SERIES_METRICS (sent, delivered, clicked, redeemed) one count per
-- minute from first to last}. Fields of other minutes or metrics are skipped.
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = last - first + 1
local metrics = { sent = 0, delivered = 1, clicked = 2, redeemed = 3 }
local out = { redis.call('EXISTS', KEYS[1]) }
for i = 1, 4 * n do
  out[i + 1] = 0
end
for k = 2, #KEYS do
  local h = redis.call('HGETALL', KEYS[k])
  if #h > 0 then out[1] = 1 end
  for i = 1, #h, 2 do
    local m, minute = string.match(h[i], '^(%a+):(%d+)$')
    local slot = m and metrics[m]
    minute = tonumber(minute)
    if slot and minute and minute >= first and minute <= last then
      local at = 2 + slot * n + (minute - first)
      out[at] = out[at] + (tonumber(h[i + 1]) or 0)
    end
  end
end
return out
