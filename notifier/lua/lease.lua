-- lease.lua: renew the leases of the jobs a notifier holds (stage: send).
-- KEYS[1] pushes (the job stream)
-- ARGV: group, consumer, then job entry ids
-- A job still pending for consumer has its idle time reset (XCLAIM JUSTID), so that
-- no other notifier takes it over for claim_idle_ms more: the lease the sender sends
-- under. A job now pending for another consumer (taken over while this one was
-- stalled) or no longer pending is not touched: plain XCLAIM would take it back.
-- Returns per job 1 (renewed) or 0 (lost).
local jobs, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', jobs, group, ARGV[i], ARGV[i], 1)
  if p[1] ~= nil and p[1][2] == consumer then
    redis.call('XCLAIM', jobs, group, consumer, 0, ARGV[i], 'JUSTID')
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
