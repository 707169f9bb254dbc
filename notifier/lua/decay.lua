-- decay.lua: engagement decay for pushes nobody clicked, a batch at a time (stage:
-- record).
-- ORDER DECAY_KEYS (notifier/convert.c, decay_script):
-- KEYS[1] engagement:decay (the cursor: last pushes:log id seen)   KEYS[2] subscribers
-- KEYS[3] subscribers:changes   KEYS[4..] clicked:<push id>, one per entry below that
--   names a push, in their order
-- ARGV: window_ms, factor, the cursor the caller read ("" = none), then per pushes:log
--   entry after that cursor, oldest first (ORDER DECAY_ARGS, 3 each): id, push id
--   ("" = not a "sent" outcome), subscriber
-- The caller reads the cursor and the entries (XRANGE, at most a batch) because a
-- script may only touch keys it is given, and clicked:<push id> comes from the log.
-- The entries of a stream never change, so only the cursor is checked: when it moved
-- (another notifier ran a batch), nothing is written and the answer is -1.
-- Walks the entries and stops at the first one younger than window_ms on Redis' own
-- clock (the log ids are Redis time too). For every "sent" push without
-- clicked:<push id>, the subscriber's engagement becomes e' = e x factor. The cursor
-- moves in the same step, so each push decays a subscriber at most once, whichever
-- notifier runs the batch.
-- Returns the number of pushes that decayed an engagement, or -1.
local cursor = redis.call('GET', KEYS[1]) or ''
if cursor ~= ARGV[3] then
  return -1
end
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) -
  tonumber(ARGV[1])
local factor = tonumber(ARGV[2])

--#include subjson

local n, last, k = 0, nil, 4
for i = 4, #ARGV - 2, 3 do
  local id, push, sub = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local ms = tonumber(string.match(id, '^(%d+)'))
  if ms == nil or ms > cutoff then
    break
  end
  if push ~= '' then
    if redis.call('EXISTS', KEYS[k]) == 0 then
      subjson_engage(KEYS[2], KEYS[3], sub, function(x) return x * factor end)
      n = n + 1
    end
    k = k + 1
  end
  last = id
end
if last then
  redis.call('SET', KEYS[1], last)
end
return n
