-- admin_sub_del.lua: delete one subscriber from the admin API (stage: http).
-- ORDER SUB_KEYS (as admin_sub_put.lua; notifier/admin.c sub_script):
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:epoch
-- KEYS[4] consent:records (not touched here: the record is the proof of consent and
--   outlives the subscriber; docs/compliance.md §4)
-- KEYS[5..] consent:<channel>, one per channel (ORDER CHANNEL), then behaviour
--   (the subscriber's record goes with it)
-- ARGV: id
-- Returns 0 when it was not stored (nothing written, no change entry), else the
-- stored JSON (the caller takes the id off the phone index of its number and X id).
-- A consent it removes bumps consent:epoch (KEYS[3], lib/subjson.lua).
--#include subjson
local id = ARGV[1]
local json = redis.call('HGET', KEYS[1], id)
if not json then
  return 0
end
redis.call('HDEL', KEYS[1], id)
redis.call('HDEL', KEYS[#KEYS], id)
for i = 5, #KEYS - 1 do
  if redis.call('HDEL', KEYS[i], id) == 1 then
    subjson_consent_revoked(KEYS[3])
  end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'del', unpack(FMT))
return json
