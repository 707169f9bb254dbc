-- session_change.lua: a console session begins or ends (stage: http).
-- ORDER SESSION_KEYS (notifier/session.c):
-- KEYS[1] session:<hex SHA-256 of the id>   KEYS[2] audit
-- ARGV: op ("create" or "delete"), record (create: {"name","role","csrf",
-- "created_ms"}; "" for delete), ttl seconds, who, role of who, ms
-- The id itself is never stored, nor recorded: the audit entry ("session.create",
-- "session.delete") names the token.
-- Returns 1 when done, 0 when a session to delete was already gone.
--#include audit
if ARGV[1] == 'create' then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  audit_add(KEYS[2], ARGV[4], ARGV[5], 'session.create', ARGV[4], ARGV[6], nil,
    cjson.encode({ expires_in_s = tonumber(ARGV[3]) }))
  return 1
end
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
audit_add(KEYS[2], ARGV[4], ARGV[5], 'session.delete', ARGV[4], ARGV[6], nil, nil)
return 1
