-- sub_suppress.lua: the suppression list, applied to a subscriber about to be written
-- (stage: http; the admin API sends it right before admin_sub_put.lua, on the same
-- connection, so it runs first; imports use admin_sub_bulk.lua, which does both).
-- On the subscriber's shard's slot: the caller read the number's entry of
-- suppressed:sms first (a key of another slot).
-- KEYS[1] subscribers   KEYS[2] consent:records   KEYS[3] stops (the shard's record of
--   the SMS opt-outs of numbers, hook_consent.lua)
-- ARGV: id, phone ("" = none), the sms consent time given (epoch s; "" = none), create
--   ("1": the write is refused when the id exists), the number's entry in
--   suppressed:sms ("" = none)
-- A number that opted out by SMS (hook_consent.lua: suppressed:sms <number> =
-- "<when>\t<how>\t<detail>"), before it was this subscriber's or while the mirror did
-- not know it yet, at or after the consent time the document gives, and whose
-- subscriber's consent record has no sms event as recent: that opt-out is added to the
-- record (sms opted_out, with the STOP's own time, how and detail), so that
-- admin_sub_put.lua, which comes next, keeps sms consent out and says so
-- (consent_kept_out), as it does for the subscriber's own STOP. A consent time after
-- the STOP, or a START from the number (which takes it off the list), lets it in.
-- The work is subput_suppress (lib/subput.lua).
-- Returns 1 when the opt-out was written, else 0.
--#include subjson
--#include subput
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
return subput_suppress(ARGV[5], KEYS[2], KEYS[3], ARGV[1], ARGV[2], tonumber(ARGV[3]))
