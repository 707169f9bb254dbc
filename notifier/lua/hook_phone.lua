-- hook_phone.lua: the number's side of an inbound opt-out or opt-in (stage: http;
-- docs/sharding.md 4f, "Inbound STOP / START"). It runs twice per message, around
-- hook_consent.lua on each shard of the number's subscribers (notifier/
-- hooks_consent.c), all on the slot of the number (or, for a DM, of the sender's id):
-- ORDER HOOK_PHONE_KEYS (notifier/hooks_consent.c):
-- KEYS[1] inbound:sids   KEYS[2] suppressed:sms   KEYS[3] optout_ack:<number>
--   (KEYS[3] is "" for a message that asks for no confirmation)
-- KEYS[4] inbound:pending: MessageSid -> "<when>\t<op>\t<channel>\t<match>\t<detail>
--   \t<value>" of every message begun and not done, which the notifier finishes
--   itself after [inbound] finish_after_s (hooks_pending.c), retried or not
-- ARGV: step ("begin" | "done"), op ("out" | "in"), channel, how ("sms:STOP" ...),
--   detail (the keyword label), now (epoch s), match ("phone" | "dm" | "id"), match
--   value, MessageSid ("" = none), ack TTL (s; "" = no ack), subscribers found (the
--   shards' sum; "done" only)
--
-- "begin": a MessageSid recorded as applied is a replay: { "dup" }, nothing written
--   (a START replayed after a STOP stays opted out). One recorded "pending" was begun
--   and not finished (a crash, a failed call: the webhook was not answered 200, so
--   Twilio sent it again): { "resume", began }, and the caller runs the shards again, each of
--   which applies it at most once (inbound:done:<sid>). Otherwise the sid is recorded
--   "pending\t<now>\t<op>\t<channel>" and { "go", now }. An SMS opt-out puts the number on
--   the suppression list now (number -> "<when>\t<how>\t<detail>", when its begin
--   time): early is safe, it only keeps consent out; a resumed one puts it back when
--   an opt-in took it off meanwhile.
-- "done": the sid becomes "<now>\t<op>\t<channel>" (the form of a message applied,
--   as before the split: older records read the same); an SMS opt-in takes the number
--   off the suppression list now (late is safe) unless an opt-out since its begin
--   put it there; the ack key (SET NX EX) makes one
--   confirmation per opt-out of a known number within the TTL, an opt-in clears it.
--   Returns { confirm }.
local sids, suppressed, ack, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local step, op, ch, how, detail = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, match, value, sid = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local ack_ttl, found = ARGV[10], tonumber(ARGV[11]) or 0
local sms_number = ch == 'sms' and match == 'phone'

if op ~= 'out' and op ~= 'in' then
  return redis.error_reply('hook_phone.lua: op must be out or in')
end
-- The time the message began: its pending record's, or now (no sid, or a first
-- begin). An entry on the suppression list is "<when>\t<how>\t<detail>".
local function began()
  local v = sid ~= '' and redis.call('HGET', sids, sid)
  local t = v and string.match(v, '^pending\t(%d+)\t')
  return tonumber(t) or tonumber(now)
end

local function entry_time()
  local v = redis.call('HGET', suppressed, value)
  return v and tonumber(string.match(v, '^(%d+)\t'))
end

if step == 'begin' then
  local at, resumed = now, false
  if sid ~= '' then
    local v = redis.call('HGET', sids, sid)
    if v and string.sub(v, 1, 8) ~= 'pending\t' then
      return { 'dup' }
    end
    if v then
      at, resumed = tostring(began()), true
    else
      redis.call('HSET', sids, sid, 'pending\t' .. now .. '\t' .. op .. '\t' .. ch)
      redis.call('HSET', pending, sid, table.concat({ now, op, ch, match, detail, value },
        '\t'))
    end
  end
  -- An opt-out is on the list from its begin, with its begin time; a resumed one
  -- puts it back if an opt-in took it off meanwhile (the safe side: a STOP that was
  -- never answered is in force).
  if sms_number and op == 'out' and (entry_time() or -1) < tonumber(at) then
    redis.call('HSET', suppressed, value, at .. '\t' .. how .. '\t' .. detail)
  end
  -- A resumed message's pending record is dated now: the notifier's walk of cut
  -- short messages (hooks_pending.c) waits a whole finish_after_s before it tries
  -- it again.
  if resumed then
    local rec = redis.call('HGET', pending, sid)
    if rec then
      redis.call('HSET', pending, sid, now .. string.sub(rec, (string.find(rec, '\t') or
        #rec + 1)))
    end
  end
  return { resumed and 'resume' or 'go', at }
end
if step ~= 'done' then
  return redis.error_reply('hook_phone.lua: step must be begin or done')
end
-- Done already (a second chain of the same message: the walk and a retry, two
-- notifiers): nothing again.
if sid ~= '' then
  local v = redis.call('HGET', sids, sid)
  if v and string.sub(v, 1, 8) ~= 'pending\t' then
    return { 0 }
  end
end
-- An opt-in takes the number off the list only if no opt-out came after the second
-- it began in (one in that second is taken as before it: entries have seconds).
if sms_number and op == 'in' and (entry_time() or 0) <= began() then
  redis.call('HDEL', suppressed, value)
end
if sid ~= '' then
  redis.call('HSET', sids, sid, now .. '\t' .. op .. '\t' .. ch)
  redis.call('HDEL', pending, sid)
end
local confirm = 0
if ack ~= '' and ack_ttl ~= '' and found > 0 then
  if op == 'out' then
    if redis.call('SET', ack, '1', 'NX', 'EX', ack_ttl) then confirm = 1 end
  else
    redis.call('DEL', ack)
  end
end
return { confirm }
