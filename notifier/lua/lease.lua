-- lease.lua: renew the leases of the jobs a notifier holds (stage: send).
-- KEYS[1] pushes (the job stream)
-- KEYS[2] {sK}owner, the shard's owner record (own.lua; absent = no ownership)
-- ARGV: group, consumer, epoch (of this consumer's lease on the shard; with KEYS[2]
--       only), then job entry ids
-- A job still pending for consumer has its idle time reset (XCLAIM JUSTID), so that
-- no other notifier takes it over for claim_idle_ms more: the lease the sender sends
-- under. A job now pending for another consumer (taken over while this one was
-- stalled) or no longer pending is not touched: plain XCLAIM would take it back.
-- The fence (docs/sharding.md 4d): a consumer that no longer holds the shard's lease
-- under ARGV[3] renews nothing (every job lost: the new owner takes them).
-- Returns per job 1 (renewed) or 0 (lost).
local jobs, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local out = {}
if KEYS[2] then
  local o = redis.call('HMGET', KEYS[2], 'owner', 'epoch')
  if o[1] ~= consumer or o[2] ~= ARGV[3] then
    for i = 4, #ARGV do
      out[#out + 1] = 0
    end
    return out
  end
end
for i = 4, #ARGV do
  local p = redis.call('XPENDING', jobs, group, ARGV[i], ARGV[i], 1)
  if p[1] ~= nil and p[1][2] == consumer then
    redis.call('XCLAIM', jobs, group, consumer, 0, ARGV[i], 'JUSTID')
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
