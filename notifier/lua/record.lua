-- record.lua: record one push's outcome, ack its job when it was the last
-- (stage: record).
-- KEYS[1] push:<deal id>   KEYS[2] pushes:log   KEYS[3] pushes   KEYS[4] stats
-- KEYS[5] consent:<channel>   KEYS[6] deal:<id>   KEYS[7] code:<deal id>
-- ARGV: sub, channel, push_id, deal_id, outcome, gateway, provider_id, http_status,
--       detail, now, latency_ms, ack_entry ("" = none), group, revoke ("1" = the
--       provider says the recipient opted out: consent for the channel ends now)
-- Outcome "retry" only moves the state so that a redelivered job may try again.
local states, logk, pushes, stats, consent = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sub, ch, push, deal_id, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HSET', states, sub .. ':' .. ch, outcome)
if outcome ~= 'retry' then
  redis.call('XADD', logk, 'MAXLEN', '~', '1000000', '*', 'push', push,
    'deal', deal_id, 'sub', sub, 'channel', ch, 'outcome', outcome,
    'gateway', ARGV[6], 'provider_id', ARGV[7], 'http_status', ARGV[8],
    'detail', ARGV[9], 'at', ARGV[10], 'latency_ms', ARGV[11])
  redis.call('HINCRBY', stats, 'outcome:' .. outcome, 1)
end
if ARGV[14] == '1' then
  redis.call('HDEL', consent, sub)
end
-- A per-recipient code that was never delivered goes back to its pool, so "first N
-- buyers" deals reach N people. KEYS[6] deal:<id>, KEYS[7] code:<deal id>.
if outcome ~= 'sent' and outcome ~= 'unknown' and outcome ~= 'retry' then
  local field = sub .. ':' .. ch
  local code = redis.call('HGET', KEYS[7], field)
  local pool = redis.call('HGET', KEYS[6], 'pool')
  if code and pool then
    redis.call('SADD', pool, code)
    redis.call('HDEL', KEYS[7], field)
  end
end
if ARGV[12] ~= '' then
  redis.call('XACK', pushes, ARGV[13], ARGV[12])
end
return 'ok'
