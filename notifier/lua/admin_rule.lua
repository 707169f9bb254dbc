-- admin_rule.lua: put or delete one API rule source (stage: http).
-- ORDER RULES_KEYS (notifier/admin.c, the rule put/delete):
-- KEYS[1] rules (hash name -> text)   KEYS[2] rules:version (counter)
-- ARGV: op ("put" or "del"), name, text (put only)
-- Every change bumps rules:version, which every notifier polls to reload.
-- Returns {1 when it existed before else 0, version after}.
local existed = redis.call('HEXISTS', KEYS[1], ARGV[2])
if ARGV[1] == 'put' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
elseif existed == 1 then
  redis.call('HDEL', KEYS[1], ARGV[2])
else
  return {0, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
return {existed, redis.call('INCR', KEYS[2])}
