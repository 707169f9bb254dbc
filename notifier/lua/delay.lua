-- delay.lua: move recipients whose quiet hours have ended back onto "pushes"
-- (stage: admit). Atomic, so of several notifiers exactly one moves each member.
-- ORDER DELAY_KEYS (notifier/deliver_admit.c, the delay timer):
-- KEYS[1] delayed   KEYS[2] pushes
-- ARGV: now, max (members per call)
-- A member is "deal\tdeal_entry\texp\tcampaign\tline"; it becomes a job of one.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do
  local deal, entry, exp, camp, line = m:match('^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$')
  if deal then
    redis.call('XADD', KEYS[2], '*', 'deal', deal, 'entry', entry, 'exp', exp,
      'camp', camp, 'r', line, unpack(FMT))
  end
  redis.call('ZREM', KEYS[1], m)
end
return #due
