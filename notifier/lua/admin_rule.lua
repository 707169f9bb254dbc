-- admin_rule.lua: put or delete one API rule source (stage: http).
-- ORDER RULES_KEYS (notifier/admin.c, the rule put/delete):
-- KEYS[1] rules (hash name -> text)   KEYS[2] rules:version (counter)
-- KEYS[3] audit (stream; "" writes no record)
-- ARGV: op ("put" or "del"), name, text (put only; "" for del), who, role, ms
-- Every change bumps rules:version, which every notifier polls to reload, and is
-- recorded on the audit stream ("rules.put", "rules.delete") with the text before
-- and after as {"text": ...}.
-- Returns {1 when it existed before else 0, version after}.
--#include audit
local old = redis.call('HGET', KEYS[1], ARGV[2])
local existed = 0
if old then existed = 1 end
local function rec(what, before, after)
  if KEYS[3] ~= '' then
    local b, a = nil, nil
    if before then b = cjson.encode({ text = before }) end
    if after then a = cjson.encode({ text = after }) end
    audit_add(KEYS[3], ARGV[4] or '', ARGV[5] or '', what, ARGV[2], ARGV[6] or '0', b, a)
  end
end
if ARGV[1] == 'put' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  rec('rules.put', old or nil, ARGV[3])
elseif existed == 1 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  rec('rules.delete', old, nil)
else
  return {0, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
return {existed, redis.call('INCR', KEYS[2])}
