-- admin_rules_load.lua: the API rules, when they changed (stage: http, reload).
-- ORDER RULES_KEYS (notifier/admin.c, the reload poll):
-- KEYS[1] rules   KEYS[2] rules:version
-- ARGV: the version the caller has ("" = none)
-- Returns {version} when it is the caller's, else {version, n, name1, text1, ...}
-- (n = number of rules, so that an empty hash still differs from "unchanged"): the
-- version and the hash read together, so a reload never pairs one with the other's
-- older state.
local v = redis.call('GET', KEYS[2]) or '0'
if v == ARGV[1] then
  return {v}
end
local all = redis.call('HGETALL', KEYS[1])
local out = {v, #all / 2}
for i = 1, #all do
  out[#out + 1] = all[i]
end
return out
