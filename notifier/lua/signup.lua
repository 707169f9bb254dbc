-- signup.lua: sign-up by text with double opt-in (stage: http; docs/inbound.md
-- section 5). Two steps, each one call:
--
-- op "ask" (a text that is a sign-up keyword): remembers the request and counts it.
--   KEYS[1] signup:<number>   KEYS[2] signup:asked:<number>   KEYS[3] inbound:sids
--   ARGV: op, now (epoch s), now (ms, the request's stamp), MessageSid ("" = none),
--     confirmation window (s), most requests a day, keyword label, categories
--     (","-joined), locale, the confirmation text sent
--   Returns {"dup"} (this MessageSid asked already: answer it again), {"limited"} (the
--   number asked too often today: no answer), {"asked"}.
--
-- op "yes" (a "Y" with a request open): makes the number a subscriber with SMS
--   consent, in one step, only if what the caller read is still what is stored.
--   KEYS[1] signup:<number>   KEYS[2] inbound:sids   KEYS[3] suppressed:sms
--   KEYS[4] optout_ack:<number>   KEYS[5] subscribers   KEYS[6] subscribers:changes
--   KEYS[7] consent:records   KEYS[8] consent:sms
--   ARGV: op, now (epoch s), MessageSid ("" = none), the number, the request's stamp
--     as read, subscriber id, its stored JSON as read ("" = none), the new JSON (the
--     caller built it from the read one, canonical), the answer as received
--   Returns {"dup"} (applied already: answer again), {"none"} (no request open: the
--   caller handles the text as any other), {"changed"} (the request or the subscriber
--   changed since read: read again), {"created"} or {"updated"}.
--   The consent record gets an "opted_in" event, how "sms:double_opt_in", detail the
--   keyword, the answer and the confirmation text shown; the number leaves the
--   suppression list (a double opt-in is as good as START).
--#include subjson

local op = ARGV[1]

if op == 'ask' then
  local pending, asked, sids = KEYS[1], KEYS[2], KEYS[3]
  local now, stamp, sid, ttl, most = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  if sid ~= '' and redis.call('HEXISTS', sids, sid) == 1 then
    return { 'dup' }
  end
  local n = redis.call('INCR', asked)
  if n == 1 then
    redis.call('EXPIRE', asked, 86400)
  end
  if n > tonumber(most) then
    return { 'limited' }
  end
  redis.call('DEL', pending)
  redis.call('HSET', pending, 'at', stamp, 'keyword', ARGV[7], 'cats', ARGV[8],
    'locale', ARGV[9], 'asked', ARGV[10])
  redis.call('EXPIRE', pending, ttl)
  if sid ~= '' then
    redis.call('HSET', sids, sid, now .. '\tsignup\tsms')
  end
  return { 'asked' }
end

if op ~= 'yes' then
  return redis.error_reply('signup.lua: unknown op')
end

local pending, sids, suppressed, ack = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local subs, changes, records, consent = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local now, sid, number, stamp = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local id, was, json, answer = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

if sid ~= '' and redis.call('HEXISTS', sids, sid) == 1 then
  return { 'dup' }
end
local p = redis.call('HMGET', pending, 'at', 'keyword', 'asked')
if not p[1] or json == '' then
  return { 'none' }
end
if p[1] ~= stamp then
  return { 'changed' }
end
local cur = redis.call('HGET', subs, id)
if (cur or '') ~= was then
  return { 'changed' }
end
redis.call('HSET', subs, id, json)
redis.call('HSET', consent, id, now)
redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'put')
subjson_consent_event(records, id, 'sms', 'opted_in', now, 'sms:double_opt_in',
  'keyword=' .. (p[2] or '') .. '; answer=' .. answer .. '; asked=' .. (p[3] or ''))
redis.call('HDEL', suppressed, number)
redis.call('DEL', ack, pending)
if sid ~= '' then
  redis.call('HSET', sids, sid, now .. '\tsignup_yes\tsms')
end
return { cur and 'updated' or 'created' }
