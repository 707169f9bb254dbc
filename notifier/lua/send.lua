-- send.lua: claim admitted recipients for sending, right before the requests go out
-- (stage: send). One call per dispatch batch.
-- KEYS[1] pushes:log   KEYS[2] stats   then per recipient: push:<deal>, deal:<deal>
-- ARGV: now, n, then per recipient: sub, channel, push_id, deal_id, expires_at
-- "admitted" becomes "sending" (compare-and-set: of two holders, one wins). A deal
-- cancelled or expired since admit stops here, the last moment before the gateway.
-- Returns per recipient: send, cancelled, expired, or skip (not ours to send).
local logk, stats = KEYS[1], KEYS[2]
local now, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 0, n - 1 do
  local states, deal = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local sub, ch, push = ARGV[3 + 5 * i], ARGV[4 + 5 * i], ARGV[5 + 5 * i]
  local deal_id, exp = ARGV[6 + 5 * i], tonumber(ARGV[7 + 5 * i])
  local field = sub .. ':' .. ch
  local verdict
  if redis.call('HGET', states, field) ~= 'admitted' then
    verdict = 'skip'
  elseif redis.call('HEXISTS', deal, 'cancelled') == 1 then
    verdict = 'cancelled'
  elseif now >= exp then
    verdict = 'expired'
  else
    verdict = 'send'
  end
  if verdict == 'send' then
    redis.call('HSET', states, field, 'sending')
  elseif verdict ~= 'skip' then
    redis.call('HSET', states, field, verdict)
    redis.call('XADD', logk, 'MAXLEN', '~', '1000000', '*', 'push', push,
      'deal', deal_id, 'sub', sub, 'channel', ch, 'outcome', verdict, 'at', ARGV[1])
    redis.call('HINCRBY', stats, 'outcome:' .. verdict, 1)
  end
  out[#out + 1] = verdict
end
return out
