-- cancel.lua: mark a deal cancelled and ack the cancel entry (stage: ingest).
-- ORDER CANCEL_KEYS (notifier/ingest.c, ingest_cancel):
-- KEYS[1] deal:<id>   KEYS[2] deals
-- ARGV: entry, group, now, keep_s (seconds to keep the mark)
-- Admit reads "cancelled" before every send, so every push not yet handed to a
-- gateway stops. A cancel that arrives before its deal keeps the deal from going out.
redis.call('HSET', KEYS[1], 'cancelled', ARGV[3])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
redis.call('XACK', KEYS[2], ARGV[2], ARGV[1])
return 'ok'
