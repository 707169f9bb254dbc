-- admin_sub_put.lua: store one subscriber from the admin API or dealpushctl (stage:
-- http).
-- ORDER SUB_KEYS (notifier/admin.c sub_script, notifier/dealpushctl.c
-- append_subscriber_put):
-- KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:epoch
-- KEYS[4] consent_log:<id>   KEYS[5] consent_history:<id>
-- KEYS[6..] consent:<channel>, one per channel in channel order (ORDER CHANNEL)
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
local epoch, clog, chist = KEYS[3], KEYS[4], KEYS[5]
local CK = 6                     -- the first consent:<channel> key
local nch = #KEYS - CK + 1
local now, how = ARGV[4 + nch], ARGV[5 + nch]
local existed = redis.call('HEXISTS', KEYS[1], id)
if ARGV[3] == '1' and existed == 1 then
  return {0}
end
local kept = {}
for i = CK, #KEYS do
  local ch = string.match(KEYS[i], '^consent:(.*)$')
  local given = ARGV[4 + i - CK]   -- the consent time for KEYS[i]
  local t = tonumber(given)
  local had = redis.call('HEXISTS', KEYS[i], id) == 1
  if t then
    local rec = redis.call('HMGET', clog, ch .. ':state', ch .. ':when',
      ch .. ':how')
    local out = rec[1] == 'opted_out' or rec[1] == 'revoked'
    if out and (tonumber(rec[2]) or 0) >= t then
      kept[#kept + 1] = ch
      json = subjson_set_consent(json, ch, 'null') or json
      if had then
        redis.call('HDEL', KEYS[i], id)
        subjson_consent_revoked(epoch)
      end
    else
      redis.call('HSET', KEYS[i], id, given)
      if not had then
        subjson_consent_event_keys(clog, chist, ch, 'granted', now, how,
          'consent time ' .. given)
      end
    end
  elseif redis.call('HDEL', KEYS[i], id) == 1 then
    subjson_consent_revoked(epoch)
    subjson_consent_event_keys(clog, chist, ch, 'removed', now, how, '')
  end
end
redis.call('HSET', KEYS[1], id, json)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'put')
return { existed == 1 and 2 or 1, json, table.concat(kept, ',') }
