-- dead.lua: dead-letter a bad deal entry and ack it, atomically (stage: ingest).
-- ORDER DEAD_KEYS (notifier/ingest.c, ingest_dead):
-- KEYS[1] deals:dead   KEYS[2] deals
-- ARGV: entry, group, reason, field, error, payload
redis.call('XADD', KEYS[1], 'MAXLEN', '~', '100000', '*',
  'reason', ARGV[3], 'field', ARGV[4], 'error', ARGV[5],
  'entry', ARGV[1], 'deal', ARGV[6], unpack(FMT))
redis.call('XACK', KEYS[2], ARGV[2], ARGV[1])
return 'ok'
