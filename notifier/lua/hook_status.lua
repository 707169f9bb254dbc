-- hook_status.lua: one Twilio status callback (stage: http).
-- ORDER HOOK_STATUS_KEYS (notifier/hooks_status.c, status_send):
-- KEYS[1] dealentry:<entry>   KEYS[2] stats   KEYS[3] resolve:due   KEYS[4] resolve:info
-- KEYS[5] resolve:tries   KEYS[6] pushes:log   KEYS[7] delivery:<deal>
-- KEYS[8] push:<deal>   KEYS[9] pushinfo:<deal>   KEYS[10] pushline:<deal>
-- KEYS[11] redelivered:<deal>   KEYS[12] report:deal:<deal>
-- KEYS[13] report:rule:<r>, KEYS[14] report:campaign:<c> of the push's resolve:info
--   entry ("" = none)
-- KEYS[15] report:rule:<r>, KEYS[16] report:campaign:<c> of its pushinfo:<deal> field
--   ("" = none)
-- KEYS[17] subscribers   KEYS[18] subscribers:changes   KEYS[19] consent:sms
-- KEYS[20] consent:epoch   KEYS[21] consent:records   KEYS[22] series:<deal> ("" = none)
-- KEYS[23] pushes   KEYS[24] behaviour (the subscriber's shard's: every key is on
--   its slot; paused_templates, global, is written by the caller)
--   (KEYS[7..16] are "" when the caller found no deal for the entry)
-- ARGV: entry, sub, channel, status (queued sending sent accepted delivered
--   undelivered failed), error code ("" = none), To (E.164, "" = unknown), now (epoch s),
--   MessageSid ("" = unknown), then what the caller read to name the keys: the deal id
--   (GET dealentry:<entry>; "" = none), the push's resolve:info value and its
--   pushinfo:<deal> value ("" = none each).
-- Those reads come before the script because a script may only touch keys it is
-- given: when any of them no longer holds (a deal planned, a push recorded or settled
-- in between), nothing is written and the answer is "retry": the caller reads again.
-- Keeps delivery:<deal id> field <sub>:<ch> = the latest status (never moved back:
-- callbacks can arrive out of order, and a final status stays). On the first final
-- status counts delivered / undelivered / delivery_failed and error:<code> in
-- report:deal:<id>, report:rule:<r>, report:campaign:<c> (rule and campaign from
-- pushinfo:<deal>), and acts on the error code:
--   30005, 30006 (unknown number, landline): consent:sms of the subscriber goes (only
--     while the stored subscriber still has that number), recorded in consent:records;
--   30007 (carrier filtered): report:rule:<r> filtered, and the answer is
--     "filtered\t<rule>": the caller sets paused_templates <rule> = now;
--   30003 (handset unreachable): the SMS is sent once more while the deal lasts: the
--     push goes back to "retry" and a job of one is added to its shard's "pushes" from what
--     record.lua kept in pushline:<deal> (the text sent; the rule from pushinfo:<deal>,
--     the number from the callback's To); redelivered:<deal> makes it one retry per
--     push at most; report counters get "redelivery".
-- A callback that carries a MessageSid keeps it as delivery:<deal> <sub>:<ch>:sid, so
-- that record.lua can tell the attempt reached Twilio when the callback came before
-- the outcome was recorded. For an SMS push already "unknown", any such callback
-- settles it: the push becomes "sent" (provider_id = MessageSid, resolved=callback),
-- counted as record.lua counts a sent push (stats and reports move one from unknown
-- to sent; rule and campaign from resolve:info; the text in the subscriber's behaviour
-- record at the attempt's time, announced on KEYS[18]), and its resolve:due / resolve:info /
-- resolve:tries entry goes. The status is then recorded as for any sent push.
-- Returns the status recorded, or unknown_push / stale / duplicate (nothing changed),
-- or retry (the keys named are not this push's any more; nothing changed).
--#include subjson
--#include outcome
--#include textdiff
--#include series
--#include behav

local stats, due, rinfo, rtries, logk = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local dk, states, pinfo, pline = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local redelivered, rdeal = KEYS[11], KEYS[12]
local subs, changes, consent, epoch = KEYS[17], KEYS[18], KEYS[19], KEYS[20]
local records, pushes = KEYS[21], KEYS[23]
local sub, ch, status, code, to = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now, sid = ARGV[7], ARGV[8]
local field = sub .. ':' .. ch
local push = ARGV[1] .. ':' .. field
local deal_id = redis.call('GET', KEYS[1])
if not deal_id then
  redis.call('HINCRBY', stats, 'hook:status:unknown_push', 1)
  return 'unknown_push'
end
if deal_id ~= ARGV[9] or (redis.call('HGET', rinfo, push) or '') ~= ARGV[10] or
    (redis.call('HGET', pinfo, field) or '') ~= ARGV[11] then
  return 'retry'
end
local rank = { queued = 1, accepted = 1, sending = 2, sent = 2, delivered = 3,
  undelivered = 3, failed = 3 }
-- The push's rule and campaign (pushinfo), and their report keys.
local rule, camp = string.match(ARGV[11], '^([^\t]*)\t(.*)$')
local rkey, ckey = KEYS[15], KEYS[16]
-- A callback about an attempt a 30003 resend replaced (Twilio retrying it, or a
-- replay) must not be taken for the new attempt's.
if sid ~= '' and redis.call('HGET', dk, field .. ':retired') == sid then
  return 'stale'
end
if sid ~= '' then
  redis.call('HSET', dk, field .. ':sid', sid)
  if redis.call('TTL', dk) < 0 then
    redis.call('EXPIRE', dk, 30 * 86400)
  end
end
if sid ~= '' and ch == 'sms' and redis.call('HGET', states, field) == 'unknown' then
  -- ORDER RESOLVE_INFO: deal, sub, channel, gateway, to, started, rule, campaign, text
  local inf = ARGV[10]
  local igw, istarted, irule, icamp = string.match(inf, '^[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)\t[^\t]*\t([^\t]*)\t([^\t]*)\t([^\t]*)')
  local rr = { rdeal }
  if KEYS[13] ~= '' then rr[#rr + 1] = KEYS[13] end
  if KEYS[14] ~= '' then rr[#rr + 1] = KEYS[14] end
  oc_resolved(states, logk, stats, rr, field, push, deal_id, sub, ch, now, 'callback',
    { 'gateway', igw or '', 'provider_id', sid }, due, rinfo, rtries)
  series_add(KEYS[22], 'sent', now, 0)
  if irule then
    -- As record.lua: attribution, and the treated audience once per subscriber.
    oc_attribute(pinfo, field, sub, ch, irule, icamp, rr, true,
      istarted ~= '' and istarted or now)
    if redis.call('TTL', pinfo) < 0 then
      redis.call('EXPIRE', pinfo, 30 * 86400)
    end
    -- pushinfo now names resolve:info's rule and campaign.
    rule, camp, rkey, ckey = irule, icamp, KEYS[13], KEYS[14]
  end
  oc_flush()
  -- As record.lua: the text in the behaviour record, and the deal for replies.
  local texted = { by = {}, ids = {} }
  behav_text(texted, sub, (tonumber(istarted) or 0) > 0 and istarted or now, ch,
    deal_id, '', '')
  behav_announce(changes, behav_text_flush(KEYS[24], texted))
end
local old = redis.call('HGET', dk, field)
if old and rank[old] == 3 then
  return 'duplicate'
end
if old and rank[old] and rank[old] > rank[status] then
  return 'stale'
end
redis.call('HSET', dk, field, status)
if redis.call('TTL', dk) < 0 then
  redis.call('EXPIRE', dk, 30 * 86400)
end
redis.call('HINCRBY', stats, 'hook:status:' .. status, 1)
if rank[status] < 3 then
  return status
end
if status == 'delivered' then series_add(KEYS[22], 'delivered', now, 0) end
local reports = { rdeal }
if rkey ~= '' then reports[#reports + 1] = rkey end
if ckey ~= '' then reports[#reports + 1] = ckey end
local counter = status
if status == 'failed' then counter = 'delivery_failed' end
for _, r in ipairs(reports) do
  redis.call('HINCRBY', r, counter, 1)
  if code ~= '' and status ~= 'delivered' then
    redis.call('HINCRBY', r, 'error:' .. code, 1)
  end
end
if status == 'delivered' or code == '' then
  return status
end
if (code == '30005' or code == '30006') and ch == 'sms' then
  local json = redis.call('HGET', subs, sub)
  local ok, s = false, nil
  if json then ok, s = pcall(cjson.decode, json) end
  if ok and type(s) == 'table' and to ~= '' and s.phone == to then
    if redis.call('HDEL', consent, sub) == 1 then
      subjson_consent_revoked(epoch)
    end
    local newjson = subjson_set_consent(json, 'sms', 'null')
    if newjson and newjson ~= json then
      redis.call('HSET', subs, sub, newjson)
      redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', sub, 'op', 'put', unpack(FMT))
    end
    subjson_consent_event(records, sub, 'sms', 'revoked', now, 'twilio:' .. code,
      'error ' .. code)
  end
elseif code == '30007' and rule and rule ~= '' then
  redis.call('HINCRBY', rkey, 'filtered', 1)
  return 'filtered\t' .. rule
elseif code == '30003' and ch == 'sms' then
  local spec = redis.call('HGET', pline, field)
  if spec and redis.call('HGET', states, field) == 'sent' then
    -- Kept before the compact form: "<exp>\t<entry>\t<campaign>\t<pool>\t<line>".
    local exp, entry, jcamp, pool, line =
      string.match(spec, '^(%d+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(sms\t.*)$')
    if line and string.sub(line, 5, 4 + #sub + 1) ~= sub .. '\t' then
      exp = nil   -- a text that only looks like the old form
    end
    if not exp then
      -- ORDER PUSHLINE_KEEP (record.lua): the text sent (its difference from the
      -- rule's reference text, field "ref\t<rule>"), the job's fields in field
      -- "job", the rule from pushinfo:<deal>, the deal entry from the push id, the
      -- number from this (signed) callback: the one the text went to.
      local job = redis.call('HGET', pline, 'job')
      local ref = rule and redis.call('HGET', pline, 'ref\t' .. rule)
      local text = ref and td_decode(ref, spec)
      if job and text and rule ~= '' and string.match(to, '^%+%d+$') then
        exp, jcamp, pool = string.match(job, '^(%d+)\t([^\t]*)\t(.*)$')
        entry = ARGV[1]
        line = table.concat({ 'sms', sub, to, rule, text }, '\t')
      end
    end
    -- One retry per push at most, whatever the later attempts report.
    if exp and tonumber(exp) > tonumber(now) and
        redis.call('HSETNX', redelivered, field, now) == 1 then
      redis.call('EXPIRE', redelivered, tonumber(exp) - tonumber(now) + 60)
      redis.call('HDEL', pline, field)
      redis.call('HDEL', dk, field)   -- the new attempt reports its own status
      redis.call('HDEL', dk, field .. ':sid')   -- and its own sid
      if sid ~= '' then
        redis.call('HSET', dk, field .. ':retired', sid)
      end
      redis.call('HSET', states, field, 'retry')
      redis.call('XADD', pushes, '*', 'deal', deal_id, 'entry', entry, 'exp', exp,
        'camp', jcamp, 'pool', pool, 'r', line, unpack(FMT))
      for _, r in ipairs(reports) do
        redis.call('HINCRBY', r, 'redelivery', 1)
      end
      return 'retried'
    end
  end
end
return status
