-- admin_sub_put.lua: store one subscriber from the admin API or dealpushctl (stage:
-- http).
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3..] consent:<channel>,
--   one per channel in channel order (ORDER CHANNEL)
-- ARGV: id, canonical JSON, create ("1": refuse when it exists), then one consent
--   time per channel (epoch seconds; "" = no consent: the field is removed), then
--   now (the notifier's clock) and how ("api", "import": for the consent record)
-- The consent record outranks an older consent time: when consent_log:<id> says the
-- subscriber opted out of a channel (a STOP, a carrier's 30005/30006, a gateway's
-- opt-out answer) at or after the time the document gives, that consent is not
-- restored: the hash field stays absent and the stored JSON says null. Re-importing
-- an old file never texts someone who said STOP since; a newer consent time (given
-- after the opt-out) does restore it. Every consent granted or removed here is
-- recorded (consent_log, consent_history).
-- One script, so that "create" can refuse an existing subscriber without a race.
-- Returns {0} (create refused, nothing written), or {1 created | 2 replaced, the JSON
-- as stored, the channels kept out separated by ","}.
--#include subjson
local id, json = ARGV[1], ARGV[2]
local nch = #KEYS - 2
local now, how = ARGV[4 + nch], ARGV[5 + nch]
local existed = redis.call('HEXISTS', KEYS[1], id)
if ARGV[3] == '1' and existed == 1 then
  return {0}
end
local kept = {}
for i = 3, #KEYS do
  local ch = string.match(KEYS[i], '^consent:(.*)$')
  local t = tonumber(ARGV[i + 1])
  local had = redis.call('HEXISTS', KEYS[i], id) == 1
  if t then
    local log = redis.call('HMGET', 'consent_log:' .. id, ch .. ':state', ch .. ':when',
      ch .. ':how')
    local out = log[1] == 'opted_out' or log[1] == 'revoked'
    if out and (tonumber(log[2]) or 0) >= t then
      kept[#kept + 1] = ch
      json = subjson_set_consent(json, ch, 'null') or json
      if had then
        redis.call('HDEL', KEYS[i], id)
        subjson_consent_revoked(SUBJSON_CONSENT_EPOCH)
      end
    else
      redis.call('HSET', KEYS[i], id, ARGV[i + 1])
      if not had then
        subjson_consent_event(id, ch, 'granted', now, how, 'consent time ' .. ARGV[i + 1])
      end
    end
  elseif redis.call('HDEL', KEYS[i], id) == 1 then
    subjson_consent_revoked(SUBJSON_CONSENT_EPOCH)
    subjson_consent_event(id, ch, 'removed', now, how, '')
  end
end
redis.call('HSET', KEYS[1], id, json)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'put')
return { existed == 1 and 2 or 1, json, table.concat(kept, ',') }
