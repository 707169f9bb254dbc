-- tokens_change.lua: create or revoke one named API token (stage: http).
-- ORDER TOKENS_CHANGE_KEYS (notifier/tokens.c):
-- KEYS[1] tokens   KEYS[2] tokens:version   KEYS[3] tokens:used   KEYS[4] audit
-- ARGV: op ("create" or "revoke"), name, record (create: {"sha256","role",
-- "created_ms"}; "" for revoke), who, role of who, ms, role of the token (create)
-- A create never replaces a token of the same name. Every change bumps
-- tokens:version (every notifier reloads) and is recorded on the audit stream
-- ("tokens.create", "tokens.revoke") with the token's role: never its hash.
-- Returns {1, version} when done, {0} when the name exists (create) or does not
-- (revoke).
--#include audit
if ARGV[1] == 'create' then
  if redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3]) == 0 then
    return {0}
  end
  redis.call('HDEL', KEYS[3], ARGV[2])
  audit_add(KEYS[4], ARGV[4], ARGV[5], 'tokens.create', ARGV[2], ARGV[6], nil,
    cjson.encode({ role = ARGV[7] }))
else
  local old = redis.call('HGET', KEYS[1], ARGV[2])
  if not old then
    return {0}
  end
  local ok, rec = pcall(cjson.decode, old)
  local role = 'unknown'
  if ok and type(rec) == 'table' and type(rec.role) == 'string' then
    role = rec.role
  end
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  audit_add(KEYS[4], ARGV[4], ARGV[5], 'tokens.revoke', ARGV[2], ARGV[6],
    cjson.encode({ role = role }), nil)
end
return {1, redis.call('INCR', KEYS[2])}
