-- admin_sub_put.lua: store one subscriber from the admin API (stage: http).
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3..] consent:<channel>,
--   one per channel in channel order (ORDER CHANNEL)
-- ARGV: id, canonical JSON, create ("1": refuse when it exists), then one consent
--   time per channel ("" = no consent: the field is removed)
-- The same writes as dealpushctl's MULTI/EXEC (docs/contracts.md), in one script so
-- that "create" can refuse an existing subscriber without a race.
-- Returns 0 (create refused, nothing written), 1 created, 2 replaced.
local id = ARGV[1]
local existed = redis.call('HEXISTS', KEYS[1], id)
if ARGV[3] == '1' and existed == 1 then
  return 0
end
redis.call('HSET', KEYS[1], id, ARGV[2])
for i = 3, #KEYS do
  local t = ARGV[i + 1]
  if t ~= nil and t ~= '' then
    redis.call('HSET', KEYS[i], id, t)
  else
    redis.call('HDEL', KEYS[i], id)
  end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'put')
if existed == 1 then
  return 2
end
return 1
