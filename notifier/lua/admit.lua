-- admit.lua: decide, atomically, which recipients of one job may be sent now
-- (stage: admit). One call per job, so Redis round trips per push stay far below one.
-- KEYS[1] deal:<id>   KEYS[2] push:<deal id>   KEYS[3] consent:sms   KEYS[4] consent:dm
-- KEYS[5] pushes:log  KEYS[6] stats
-- ARGV: now, expires_at, keep_until, deal_id, n, then per recipient: sub, channel,
--       push_id, own_retry
-- States per (subscriber, channel) in push:<deal>: absent, "admitted" or "retry"
-- (the gateway certainly does not have it) admit again; "sending" (send.lua set it
-- just before the request) admits only as own_retry = "1", from the process that
-- holds the definite failure of that request; otherwise a crash left it unknown
-- whether the gateway took it, and a text is never sent twice. Anything else is
-- final. Admitted recipients become "sending" only in send.lua.
-- Returns one verdict per recipient: admit, expired, cancelled, no_consent,
-- duplicate, unknown. Every verdict but admit is final and logged here.
local deal, states, logk, stats = KEYS[1], KEYS[2], KEYS[5], KEYS[6]
local consent = { sms = KEYS[3], dm = KEYS[4] }
local now, exp, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local deal_id, n = ARGV[4], tonumber(ARGV[5])

local global = nil
if now >= exp then
  global = 'expired'
elseif redis.call('HEXISTS', deal, 'cancelled') == 1 then
  global = 'cancelled'
end

local function final(field, push, sub, ch, outcome)
  redis.call('XADD', logk, 'MAXLEN', '~', '1000000', '*', 'push', push,
    'deal', deal_id, 'sub', sub, 'channel', ch, 'outcome', outcome, 'at', ARGV[1])
  redis.call('HINCRBY', stats, 'outcome:' .. outcome, 1)
end

local out = {}
for i = 0, n - 1 do
  local sub, ch = ARGV[6 + 4 * i], ARGV[7 + 4 * i]
  local push, own = ARGV[8 + 4 * i], ARGV[9 + 4 * i]
  local field = sub .. ':' .. ch
  local state = redis.call('HGET', states, field)
  local verdict
  if state == 'sending' and own ~= '1' then
    verdict = 'unknown'
  elseif state and state ~= 'retry' and state ~= 'sending' and state ~= 'admitted' then
    verdict = 'duplicate'
  elseif global then
    verdict = global
  elseif not consent[ch] or redis.call('HEXISTS', consent[ch], sub) == 0 then
    verdict = 'no_consent'
  else
    verdict = 'admit'
  end
  if verdict == 'admit' then
    redis.call('HSET', states, field, 'admitted')
  elseif verdict == 'duplicate' then
    redis.call('HINCRBY', stats, 'skip:duplicate', 1)
  else
    redis.call('HSET', states, field, verdict)
    final(field, push, sub, ch, verdict)
  end
  out[#out + 1] = verdict
end
if redis.call('TTL', states) < 0 then
  redis.call('EXPIREAT', states, keep)
end
return out
