-- cancel.lua: mark a deal cancelled in one shard (stage: ingest).
-- ORDER CANCEL_KEYS (notifier/ingest.c, ingest_cancel):
-- KEYS[1] deal:<id> (the shard's copy)
-- ARGV: now, keep_s (seconds to keep the mark)
-- Admit and send read "cancelled" in the shard's copy before every push, so every
-- push of the shard not yet handed to a gateway stops. A cancel that arrives before
-- its deal keeps the deal from going out in that shard (plan.lua finds the hash
-- and plans, but admit skips every push). Every shard's reader runs it for its
-- shard; the caller acks the entry in its group once it answered (deals is in
-- another slot).
redis.call('HSET', KEYS[1], 'cancelled', ARGV[1])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 'ok'
