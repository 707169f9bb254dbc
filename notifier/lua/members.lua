-- members.lua: the live notifiers (stage: all; docs/sharding.md 4d). Global: one key.
-- ORDER MEMBERS_KEYS (notifier/owner.c): KEYS[1] dealpush:members, a hash: notifier
--   id -> "<until, Redis ms>\t<http address>"
-- ARGV: op ("beat" | "leave"), me, lease_ms, address
--   "beat": me is live until now + lease; "leave": me is gone (a notifier stopping).
-- Either way every member whose lease has passed is dropped. Answers the live ids,
-- sorted (every notifier computes the same assignment from the same list).
local key, op, me = KEYS[1], ARGV[1], ARGV[2]

if op ~= 'beat' and op ~= 'leave' then
  return redis.error_reply('members.lua: op must be beat or leave')
end
if me == nil or me == '' or string.find(me, '\t', 1, true) then
  return redis.error_reply('members.lua: the notifier id is empty or holds a tab')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if op == 'beat' then
  local lease = tonumber(ARGV[3])
  if not lease or lease <= 0 then
    return redis.error_reply('members.lua: beat needs a lease in ms')
  end
  redis.call('HSET', key, me, tostring(now + lease) .. '\t' .. (ARGV[4] or ''))
else
  redis.call('HDEL', key, me)
end
local all, live = redis.call('HGETALL', key), {}
for i = 1, #all, 2 do
  local untl = tonumber(string.match(all[i + 1], '^(%d+)'))
  if untl and untl >= now then
    live[#live + 1] = all[i]
  else
    redis.call('HDEL', key, all[i])
  end
end
table.sort(live)
return live
