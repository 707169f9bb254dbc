-- sub_suppress.lua: the suppression list, applied to a subscriber about to be written
-- (stage: http; the admin API and dealpushctl send it right before admin_sub_put.lua,
-- on the same connection, so it runs first).
-- KEYS[1] suppressed:sms   KEYS[2] subscribers   KEYS[3] consent_log:<id>
-- KEYS[4] consent_history:<id>
-- ARGV: id, phone ("" = none), the sms consent time given (epoch s; "" = none), create
--   ("1": the write is refused when the id exists)
-- A number that opted out by SMS (hook_consent.lua: suppressed:sms <number> =
-- "<when>\t<how>\t<detail>"), before it was this subscriber's or while the mirror did
-- not know it yet, at or after the consent time the document gives, and whose
-- subscriber's consent record has nothing as recent: that opt-out is written to the
-- record (sms:state opted_out, with the STOP's own time, how and detail), so that
-- admin_sub_put.lua, which comes next, keeps sms consent out and says so
-- (consent_kept_out), as it does for the subscriber's own STOP. A consent time after
-- the STOP, or a START from the number (which takes it off the list), lets it in.
-- Returns 1 when the opt-out was written, else 0.
--#include subjson
local sup, subs, clog, chist = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, phone, t, create = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if phone == '' or not t then
  return 0
end
if create == '1' and redis.call('HEXISTS', subs, id) == 1 then
  return 0
end
local v = redis.call('HGET', sup, phone)
if not v then
  return 0
end
local when, how, detail = string.match(v, '^(%d+)\t([^\t]*)\t(.*)$')
when = tonumber(when)
if not when or when < t then
  return 0
end
local last = tonumber(redis.call('HGET', clog, 'sms:when'))
if last and last >= when then
  return 0
end
subjson_consent_event_keys(clog, chist, 'sms', 'opted_out', tostring(when), how, detail)
return 1
