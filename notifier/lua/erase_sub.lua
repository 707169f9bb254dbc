-- erase_sub.lua: a subscriber's own data erased on request (stage: http; POST
-- /v1/erase, docs/compliance.md "Erasure and export"). After it nothing can be sent
-- to the subscriber (consent gone, every mirror told); erase_proof.lua has kept what
-- proves their consent history, without the number or the id, just before.
-- ORDER ERASE_SUB_KEYS (notifier/privacy.c):
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:epoch
-- KEYS[4] consent:records   KEYS[5] consent:sms   KEYS[6] consent:dm
-- KEYS[7] texts:<sub>   KEYS[8] behaviour (fields <id>, <id>\t<channel> go)
-- KEYS[9..] the subscriber's cap keys found in the push history (camp:, capcamp:,
--   capdeal:) and its lastsent:<ch>:<id>, deleted
-- ARGV: id, phone ("" = none), now (epoch s)
-- All on the subscriber's shard's slot: the caller has put the number on the
-- suppression list (suppressed:sms, "<now>\terased\tdata_rights") just before.
-- Returns {1 when a subscriber was stored, else 0 (erased before, or never stored:
-- the rest still runs, so a second erasure finishes one that failed half-way)}.
-- The number stays on the suppression list, so a later import of it is kept out
-- (lib/subput.lua) until it opts in again.
local id = ARGV[1]
local stored = redis.call('HGET', KEYS[1], id)
redis.call('HDEL', KEYS[1], id)
redis.call('HDEL', KEYS[4], id)
-- ORDER CHANNEL: the record, and the deal last texted per channel (record.lua).
redis.call('HDEL', KEYS[8], id, id .. '\tsms', id .. '\tdm')
local revoked = redis.call('HDEL', KEYS[5], id) + redis.call('HDEL', KEYS[6], id)
if revoked > 0 then
  redis.call('INCR', KEYS[3])
end
if stored then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'del', unpack(FMT))
end
redis.call('DEL', KEYS[7])
for i = 9, #KEYS do
  redis.call('DEL', KEYS[i])
end
return { stored and 1 or 0 }
