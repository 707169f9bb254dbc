-- erase_proof.lua: the proof of consent kept for an erased subscriber (stage: http;
-- the first step of POST /v1/erase, docs/compliance.md "Erasure and export").
-- KEYS[1] proof:<hash> (in the slot of its own hash: the subscriber is gone, so
--   nothing else could find it)
-- ARGV: id hash, number hash ("" = none), now (epoch s), the consent record as it
--   is, how long to keep it (s)
-- Kept: the two hashes, when, and the consent events (when, channel, state, how and
-- the words shown), enough to answer "when and how did this number opt in or out?"
-- for the law's limitation period, nothing to text or identify anyone by. Written
-- again by a repeated erasure only while the record is still there. Returns {1}.
redis.call('HSET', KEYS[1], 'id_sha256', ARGV[1], 'number_sha256', ARGV[2],
  'erased_at', ARGV[3], 'events', ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return { 1 }
