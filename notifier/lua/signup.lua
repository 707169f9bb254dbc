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
--   consent, in three calls (docs/sharding.md 4f: the number's keys and the
--   subscriber's are on two slots), each only if what the caller read is still what
--   is stored; a crash between them leaves the MessageSid pending and Twilio's retry
--   goes through them again, each doing its part once.
--   "yes_begin", on the number's slot:
--   KEYS[1] signup:<number>   KEYS[2] inbound:sids
--   ARGV: op, now (epoch s), MessageSid ("" = none), the request's stamp as read
--     ("" = none was read)
--   Returns {"dup"} (applied already: answer again), {"none"} (no request open, or
--   it is another "Y"'s: the caller handles the text as any other), {"changed"} (the
--   request changed since read: read again), {"go", began} (the request held by this
--   sid, field "by"; the sid recorded pending, or found pending; began: when the "Y"
--   began, the pending record's time).
--   "yes_store", on the subscriber's shard:
--   KEYS[1] subscribers   KEYS[2] subscribers:changes   KEYS[3] consent:records
--   KEYS[4] consent:sms   KEYS[5] inbound:done:<sid> ("" = no sid)   KEYS[6] stops
--   ARGV: op, now (epoch s), subscriber id, its stored JSON as read ("" = none), the
--     new JSON (the caller built it from the read one, canonical), keyword, the
--     answer as received, the confirmation text the request showed, the marker's
--     TTL, the number, the time yes_begin ran (epoch s)
--   Returns {"changed"} (the subscriber changed since read: read again),
--   {"stopped"} (the number said STOP after the second the "Y" began in, and the STOP
--   reached this shard: nothing stored; a STOP in that same second is taken as
--   before the "Y", which then wins), {"created"} or {"updated"} (the first time's answer again
--   when the marker says it ran).
--   The consent record gets an "opted_in" event, how "sms:double_opt_in", detail the
--   keyword, the answer and the confirmation text shown.
--   "yes_done", on the number's slot:
--   KEYS[1] signup:<number>   KEYS[2] inbound:sids   KEYS[3] suppressed:sms
--   KEYS[4] optout_ack:<number>
--   ARGV: op, now (epoch s), MessageSid ("" = none), the number, the time yes_begin
--     ran (epoch s)
--   The number leaves the suppression list (a double opt-in is as good as START)
--   unless a STOP after the second the "Y" began in put it there, the request is closed, the sid
--   applied. Returns {"ok"}.
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

if op == 'yes_begin' then
  local pending, sids = KEYS[1], KEYS[2]
  local now, sid, stamp = ARGV[2], ARGV[3], ARGV[4]
  local v = sid ~= '' and redis.call('HGET', sids, sid)
  if v and string.sub(v, 1, 8) ~= 'pending\t' then
    return { 'dup' }
  end
  local at = redis.call('HGET', pending, 'at')
  if not at or stamp == '' then
    return { 'none' }
  end
  if at ~= stamp then
    return { 'changed' }
  end
  -- The request is answered once: the first "Y" to get here holds it (its retry
  -- after a crash finds it its own); another is a "Y" with no request open.
  local holder = redis.call('HGET', pending, 'by')
  if holder and holder ~= sid then
    return { 'none' }
  end
  redis.call('HSET', pending, 'by', sid)
  if sid ~= '' and not v then
    redis.call('HSET', sids, sid, 'pending\t' .. now .. '\tsignup_yes\tsms')
  end
  -- When the "Y" began: a STOP from then on ends it (yes_store, yes_done).
  return { 'go', v and string.match(v, '^pending\t(%d+)\t') or now }
end

if op == 'yes_store' then
  local subs, changes, records, consent, done = KEYS[1], KEYS[2], KEYS[3], KEYS[4],
    KEYS[5]
  local stops = KEYS[6]
  local now, id, was, json = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
  local keyword, answer, shown, ttl = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
  local number, began = ARGV[10], tonumber(ARGV[11]) or 0
  if done ~= '' then
    local first = redis.call('GET', done)
    if first then return { first } end
  end
  local stop = redis.call('HGET', stops, number)
  if stop and (tonumber(string.match(stop, '^(%d+)\t')) or 0) > began then
    return { 'stopped' }
  end
  local cur = redis.call('HGET', subs, id)
  if (cur or '') ~= was then
    return { 'changed' }
  end
  redis.call('HSET', subs, id, json)
  redis.call('HSET', consent, id, now)
  redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', id, 'op', 'put', unpack(FMT))
  subjson_consent_event(records, id, 'sms', 'opted_in', now, 'sms:double_opt_in',
    'keyword=' .. keyword .. '; answer=' .. answer .. '; asked=' .. shown)
  local res = cur and 'updated' or 'created'
  if done ~= '' then
    redis.call('SET', done, res, 'EX', ttl)
  end
  return { res }
end

if op ~= 'yes_done' then
  return redis.error_reply('signup.lua: unknown op')
end

local pending, sids, suppressed, ack = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, sid, number, began = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]) or 0
local entry = redis.call('HGET', suppressed, number)
if not entry or (tonumber(string.match(entry, '^(%d+)\t')) or 0) <= began then
  redis.call('HDEL', suppressed, number)
  redis.call('DEL', ack)
end
redis.call('DEL', pending)
if sid ~= '' then
  redis.call('HSET', sids, sid, now .. '\tsignup_yes\tsms')
end
return { 'ok' }
