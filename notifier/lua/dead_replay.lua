-- dead_replay.lua: a dead letter published again and removed, in one step (stage:
-- ingest or record, from dealpushctl dead replay, after the CLI validated the payload
-- with the daemon's own parser).
-- ORDER REPLAY_KEYS (notifier/ctl_dead.c): KEYS[1] deals:dead or conversions:dead
-- KEYS[2] deals or conversions
-- ARGV: the dead letter's entry, the payload field ("deal" or "conversion"), the
-- payload as validated
-- Returns {'ok', new entry}; {'gone'} when the dead letter is no longer there;
-- {'changed'} when its payload is not the one validated. Nothing is removed unless
-- the payload was added to KEYS[2] in the same step.
local r = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #r == 0 then return {'gone'} end
local f, payload = r[1][2], nil
for k = 1, #f, 2 do
  if f[k] == ARGV[2] then payload = f[k + 1] end
end
if payload ~= ARGV[3] then return {'changed'} end
local new = redis.call('XADD', KEYS[2], '*', ARGV[2], payload, unpack(FMT))
redis.call('XDEL', KEYS[1], ARGV[1])
return {'ok', new}
