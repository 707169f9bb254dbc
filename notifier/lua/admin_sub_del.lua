-- admin_sub_del.lua: delete one subscriber from the admin API (stage: http).
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3..] consent:<channel>
-- ARGV: id
-- Returns 0 when it was not stored (nothing written, no change entry), else 1.
-- A consent it removes bumps consent:epoch (lib/subjson.lua).
--#include subjson
local id = ARGV[1]
if redis.call('HDEL', KEYS[1], id) == 0 then
  return 0
end
for i = 3, #KEYS do
  if redis.call('HDEL', KEYS[i], id) == 1 then
    subjson_consent_revoked(SUBJSON_CONSENT_EPOCH)
  end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'del')
return 1
