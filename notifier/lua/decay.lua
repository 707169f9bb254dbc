-- decay.lua: engagement decay for pushes nobody clicked, a batch at a time (stage:
-- record).
-- KEYS[1] pushes:log   KEYS[2] engagement:decay (the cursor: last log id seen)
-- KEYS[3] subscribers   KEYS[4] subscribers:changes
-- ARGV: window_ms, count, factor
-- Walks pushes:log after the cursor, oldest first, at most count entries, and stops at
-- the first entry younger than window_ms on Redis' own clock (the log ids are Redis
-- time too). For every "sent" push without clicked:<push id>, the subscriber's
-- engagement becomes e' = e x factor. The cursor moves in the same step, so each push
-- decays a subscriber at most once, whichever notifier runs the batch.
-- Returns the number of pushes that decayed an engagement.
local cursor = redis.call('GET', KEYS[2]) or '0-0'
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) -
  tonumber(ARGV[1])
local factor = tonumber(ARGV[3])

--#include subjson

local entries = redis.call('XRANGE', KEYS[1], '(' .. cursor, '+', 'COUNT', ARGV[2])
local n, last = 0, nil
for _, e in ipairs(entries) do
  local ms = tonumber(string.match(e[1], '^(%d+)'))
  if ms == nil or ms > cutoff then
    break
  end
  local f, kv = e[2], {}
  for i = 1, #f, 2 do
    kv[f[i]] = f[i + 1]
  end
  if kv.outcome == 'sent' and kv.push and kv.sub and
      redis.call('EXISTS', 'clicked:' .. kv.push) == 0 then
    subjson_engage(KEYS[3], KEYS[4], kv.sub, function(x) return x * factor end)
    n = n + 1
  end
  last = e[1]
end
if last then
  redis.call('SET', KEYS[2], last)
end
return n
