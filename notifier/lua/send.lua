-- send.lua: claim admitted recipients for sending, right before the requests go out
-- (stage: send). One call per dispatch batch.
-- KEYS[1] pushes:log   KEYS[2] stats   then per recipient: push:<deal>, deal:<deal>
-- ARGV: now, consumer, n, then per recipient: sub, channel, push_id, deal_id,
--       expires_at, idempotent ("1" when the reserved gateway takes an
--       Idempotency-Key, so a crash mid-request may simply send again), rule,
--       campaign
-- "admitted" becomes "sending:<consumer>" or "sendingw:<consumer>" (compare-and-set:
-- of two holders, one wins). A deal cancelled or expired since admit, or a consent
-- revoked since admit (a STOP that came while the push waited for a gateway slot),
-- stops here, the last moment before the gateway: its code, if it took one, goes
-- back to the pool, and the outcome is logged and counted in the reports.
-- Returns per recipient: send, cancelled, expired, no_consent, or skip (not ours to
-- send).
local logk, stats = KEYS[1], KEYS[2]
local now, consumer, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 0, n - 1 do
  local states, deal = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local b = 4 + 8 * i
  local sub, ch, push = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local deal_id, exp, idem = ARGV[b + 3], tonumber(ARGV[b + 4]), ARGV[b + 5]
  local rule, camp = ARGV[b + 6], ARGV[b + 7]
  local field = sub .. ':' .. ch
  local verdict
  if redis.call('HGET', states, field) ~= 'admitted' then
    verdict = 'skip'
  elseif redis.call('HEXISTS', deal, 'cancelled') == 1 then
    verdict = 'cancelled'
  elseif now >= exp then
    verdict = 'expired'
  elseif redis.call('HEXISTS', 'consent:' .. ch, sub) == 0 then
    verdict = 'no_consent'
  else
    verdict = 'send'
  end
  if verdict == 'send' then
    local mark = 'sending:'
    if idem == '1' then
      mark = 'sendingw:'
    end
    redis.call('HSET', states, field, mark .. consumer)
  elseif verdict ~= 'skip' then
    local codes = 'code:' .. deal_id
    local code = redis.call('HGET', codes, field)
    local pool = redis.call('HGET', deal, 'pool')
    if code and pool then
      redis.call('SADD', pool, code)
      redis.call('HDEL', codes, field)
    end
    redis.call('HSET', states, field, verdict)
    redis.call('XADD', logk, 'MAXLEN', '~', '1000000', '*', 'push', push,
      'deal', deal_id, 'sub', sub, 'channel', ch, 'outcome', verdict, 'at', ARGV[1])
    redis.call('HINCRBY', stats, 'outcome:' .. verdict, 1)
    redis.call('HINCRBY', 'report:deal:' .. deal_id, verdict, 1)
    redis.call('HINCRBY', 'report:rule:' .. rule, verdict, 1)
    if camp ~= '' then
      redis.call('HINCRBY', 'report:campaign:' .. camp, verdict, 1)
    end
  end
  out[#out + 1] = verdict
end
return out
