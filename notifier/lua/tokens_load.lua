-- tokens_load.lua: the named API tokens, when they changed (stage: http, reload).
-- ORDER TOKENS_LOAD_KEYS (notifier/tokens.c, the poll):
-- KEYS[1] tokens   KEYS[2] tokens:version   KEYS[3] tokens:used
-- ARGV: the version the caller has ("" = none)
-- Returns {version} when it is the caller's, else {version, n, name1, record1,
-- used1, ...} (used: last use in epoch ms, "" when never): the version and the hash
-- read together, so a reload never pairs one with the other's older state.
local v = redis.call('GET', KEYS[2]) or '0'
if v == ARGV[1] then
  return {v}
end
local all = redis.call('HGETALL', KEYS[1])
local out = {v, #all / 2}
for i = 1, #all, 2 do
  out[#out + 1] = all[i]
  out[#out + 1] = all[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[3], all[i]) or ''
end
return out
