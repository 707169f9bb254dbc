-- hook_status_seen.lua: a Twilio status callback counted once per (MessageSid,
-- MessageStatus) (stage: http). hooks.c calls it before hook_status.lua, which it
-- leaves untouched: "claim" first, then "done" once hook_status.lua answered, or
-- "release" when it failed (so that Twilio's retry is counted).
-- KEYS[1] status_seen:<MessageSid>:<MessageStatus>
-- ARGV: op ("claim" | "done" | "release"), claim TTL (s), done TTL (s)
-- claim returns "new" (go on; the key holds "pending" for the claim TTL, so a
-- callback whose process died is counted when Twilio retries), "pending" (the same
-- callback is being counted right now: answer 503, Twilio retries) or "duplicate"
-- (counted before: answer 204, count nothing). done and release return "ok".
local key, op = KEYS[1], ARGV[1]
local cur = redis.call('GET', key)
if op == 'claim' then
  if cur == 'done' then
    return 'duplicate'
  elseif cur then
    return 'pending'
  end
  redis.call('SET', key, 'pending', 'EX', ARGV[2])
  return 'new'
elseif op == 'done' then
  redis.call('SET', key, 'done', 'EX', ARGV[3])
elseif cur == 'pending' then
  redis.call('DEL', key)
end
return 'ok'
