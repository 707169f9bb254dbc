-- record.lua: record the outcomes of a batch of pushes (stage: record).
-- One call per loop pass for every outcome decided in it, so Redis round trips per
-- push stay far below one.
-- ORDER RECORD_KEYS (include/pushline.h):
-- KEYS[1] pushes:log   KEYS[2] stats   KEYS[3] resolve:due   KEYS[4] resolve:info
-- KEYS[5] subscribers   KEYS[6] subscribers:changes   KEYS[7] consent:epoch
-- KEYS[8] resolve:tries   KEYS[9] behaviour (a sent push is a text in it: lib/behav.lua)
--   then per outcome (ORDER RECORD_RKEYS, 4 each): codepush:<code> ("" = no code),
--   then the caps' keys of the push as send.lua counted it (texts:<sub>,
--   camp:<campaign>:<sub>, the law's; "" = none; the notifier passes them only for
--   an outcome that gives a place back),
--   then per group (ORDER RECORD_GKEYS, 13 each; an outcome names its group: the
--   pushes of one deal, channel, rule, campaign and pool, with a code or without,
--   share these keys, so a batch passes them once and not once per push):
--   push:<deal>, consent:<channel>, deal:<id>, code:<deal>, the code pool ("" =
--   none; admit.lua made sure the job names it; sharded, the shard's stash of it,
--   docs/sharding.md 4c), report:deal:<id>,
--   report:rule:<rule>, report:campaign:<c> ("" = none), pushline:<deal>,
--   pushinfo:<deal>, delivery:<deal>, consent:records and series:<deal> (a sent push counts "sent:<minute>" there, docs/api.md)
-- ARGV: n, resolve_at (when an unknown push is first looked up), then per outcome
--   (ORDER RECORD_RARGS, 25 each): sub, channel, push_id, deal_id, outcome, gateway,
--   provider_id, http_status, detail, now, latency_ms, revoke, segments (SMS parts of
--   the text sent; 0 for other channels), resend ("1" for a sent SMS that may get
--   a 30003 status callback: what sending it again needs is kept in pushline:<deal>
--   until the deal expires; "" otherwise), rule, campaign, to, started (epoch s the
--   attempt began), text (the body sent), expires_at, code_bad ("1": the pool's code
--   for this push cannot be sent, so it is dropped, not given back), multi ("1": the
--   subscriber has more than one channel, so another channel's push may have counted
--   it treated already), behav_old, behav_new (for a sent push, the subscriber's
--   behaviour record as the notifier's mirror has it, "" = none stored, and as the
--   text makes it: written as is when the stored one is still behav_old; behav_new
--   "" = computed here, lib/behav.lua), group (its keys' group, from 1)
-- Counts each final outcome in stats and the reports (lib/outcome.lua), and for a sent
-- push keeps pushinfo:<deal id> field <sub>:<ch> = "<rule>\t<campaign>" (and, for an
-- A/B test member, whose rule argument is "<rule>/<variant>", field "<sub>:<ch>\tab" =
-- "<rule>:<variant>", counted "ab:<rule>:<variant>:sent" in report:deal) for click and
-- conversion attribution, and codepush:<code> = push id (sharded, a conversion by
-- code finds the push's shard in the pool's out, written when the shard reserved
-- the code); a subscriber's first sent
-- push of a deal counts "treated_audience" once.
--   revoke = "1": the provider says the recipient opted out, so consent for the
--   channel ends now: consent:<channel>, the stored JSON's consent (null) and the
--   consent record (consent:records) change as for a STOP.
-- "unknown" (the request may have reached the provider): when a status callback for
-- the push already came (delivery:<deal> <sub>:<ch>:sid), it is "sent" with that
-- sid; otherwise it stays "unknown" and an SMS is queued for resolution (resolve.c).
-- A "sent" for a push already "unknown" (another notifier took the job over while
-- this one's request was in flight) resolves it: the reports move it from unknown
-- to sent.
-- Outcome "retry" only moves the state so that a redelivered job may try again.
-- Idempotent: an outcome for a push already in a final state changes nothing, so
-- a batch retried after a lost reply is not logged twice.
-- A final outcome other than sent or unknown proves that no text was made: the
-- push's places under the caps (taken when send.lua claimed it) are given back. A
-- "retry" keeps its place: the push is claimed again and keeps it (lib/outcome.lua).
-- A per-recipient code that was never delivered goes back to its pool, so "first N
-- buyers" deals reach N people. The jobs are acked separately, once every outcome
-- of a job is recorded.
--#include subjson
--#include outcome
--#include textdiff
--#include series
--#include behav
local logk, stats, due, info = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local subs, changes, epoch, tries = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local n, resolve_at = tonumber(ARGV[1]), ARGV[2]
local RK, RG, RA = 4, 13, 25
local gbase = 10 + RK * n     -- the first group's first key
local texted = { by = {}, ids = {} } -- the texts for the behaviour records (lib/behav.lua)
local series_keys = {} -- series:<deal> counted in this call -> the seconds its deal has left
local expiring = {}   -- keys given a TTL in this call
local kept = {}       -- pushline keys given their "job" field in this call
local refs = {}       -- "<pushline key>\t<rule>" -> that rule's reference text and
                      -- td_encode's hint for it
local lines, line_keys = {}, {}  -- pushline key -> its push fields and values, in order

-- "<rule>/<variant>" (an A/B test member) or "<rule>" as rule, variant ("" = none),
-- split once per string of the call.
local rule_parts = {}
local function rule_split(rs_arg)
  local rs_parts = rule_parts[rs_arg]
  if not rs_parts then
    rs_parts = { string.match(rs_arg, '^([^/]*)/?(.*)$') }
    rule_parts[rs_arg] = rs_parts
  end
  return rs_parts[1], rs_parts[2]
end

-- The series field a sent push counts in, made once per time of the call.
local sent_fields = {}
local function sent_field(at)
  local f = sent_fields[at]
  if f == nil then
    f = series_field('sent', at) or false
    sent_fields[at] = f
  end
  return f
end

-- One HSET per pushline key for every push of the call (written at the end, once per
-- PUSHLINE_CHUNK fields): nothing in this call reads a push's field back.
local PUSHLINE_CHUNK = 256
local function pushline_flush()
  for _, key in ipairs(line_keys) do
    local fv = lines[key]
    for i = 1, #fv, 2 * PUSHLINE_CHUNK do
      redis.call('HSET', key, unpack(fv, i, math.min(i + 2 * PUSHLINE_CHUNK - 1, #fv)))
    end
  end
end

local function expire_once(key, ttl)
  if not expiring[key] then
    expiring[key] = true
    if redis.call('TTL', key) < 0 then
      redis.call('EXPIRE', key, ttl)
    end
  end
end

for i = 0, n - 1 do
  local kb, b = 10 + RK * i, 3 + RA * i
  local gk = gbase + RG * (oc_num(ARGV[b + 24]) - 1)
  local states, consent, deal, codes = KEYS[gk], KEYS[gk + 1], KEYS[gk + 2], KEYS[gk + 3]
  local pool = KEYS[gk + 4]
  local reports = { KEYS[gk + 5], KEYS[gk + 6], KEYS[gk + 7] }
  local pushline, pushinfo, delivery = KEYS[gk + 8], KEYS[gk + 9], KEYS[gk + 10]
  local records, series = KEYS[gk + 11], KEYS[gk + 12]
  local codepush = KEYS[kb]
  local sub, ch, push, deal_id = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local outcome, gw, provider_id = ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
  local at = ARGV[b + 9]
  local camp = ARGV[b + 15]
  local rule, variant = rule_split(ARGV[b + 14])
  local field = sub .. ':' .. ch
  local state = redis.call('HGET', states, field)
  local sending = state and string.find(state, 'sending', 1, true) == 1
  local open = state == false or state == 'admitted' or state == 'retry' or
    state == 'delayed' or state == 'deferred' or sending
  local resolving = state == 'unknown' and outcome == 'sent'
  local resolved = nil
  if open and outcome == 'unknown' then
    local sid = redis.call('HGET', delivery, field .. ':sid')
    if sid then
      outcome, provider_id, resolved = 'sent', sid, 'callback'
    end
  end
  if resolving then
    resolved = 'answer'
  end
  if outcome == 'retry' then
    -- "retry" only replaces the in-flight mark: the backoff may already have
    -- re-admitted the push (records are batched), and that newer state stands.
    if sending then
      redis.call('HSET', states, field, 'retry')
    end
  elseif open or resolving then
    local extra = { 'gateway', gw, 'provider_id', provider_id, 'http_status',
      ARGV[b + 7], 'detail', ARGV[b + 8], 'latency_ms', ARGV[b + 10] }
    if resolving then
      oc_resolved(states, logk, stats, reports, field, push, deal_id, sub, ch, at,
        resolved, extra, due, info, tries)
    else
      if resolved then
        extra[#extra + 1] = 'resolved'
        extra[#extra + 1] = resolved
        oc_add(stats, 'resolved:' .. resolved, 1)
      end
      oc_final(states, logk, stats, reports, field, push, deal_id, sub, ch, outcome, at,
        extra)
    end
    if outcome ~= 'sent' and outcome ~= 'unknown' then
      oc_cap_give_back({ KEYS[kb + 1], KEYS[kb + 2], KEYS[kb + 3] }, push)
    end
    if outcome == 'unknown' and ch == 'sms' then
      oc_queue_unknown(due, info, push, resolve_at, deal_id, sub, ch, gw, ARGV[b + 16],
        ARGV[b + 17], rule, camp, ARGV[b + 18])
    end
    if outcome == 'sent' then
      local segs = oc_num(ARGV[b + 12]) or 0
      local ttl = (oc_num(ARGV[b + 19]) or 0) - oc_num(at)
      -- Counted with the other counts (oc_add: one HINCRBY a call and minute), the
      -- key's TTL set once they are written.
      local sf = series ~= '' and sent_field(at)
      if sf then
        oc_add(series, sf, 1)
        if not series_keys[series] then series_keys[series] = ttl end
      end
      if segs > 0 then
        for _, r in ipairs(reports) do
          oc_add(r, 'sms_segments', segs)
        end
      end
      local text = ARGV[b + 18]
      if ARGV[b + 13] == '1' and ttl > 0 and text ~= '' then
        -- ORDER PUSHLINE_KEEP (hook_status.lua): per push the text sent, as its
        -- difference from the deal's first text of the same rule (field
        -- "ref\t<rule>"; lib/textdiff.lua), and once per deal field "job" =
        -- "<expires_at>\t<campaign>\t<code pool>"; the rule is in pushinfo:<deal>,
        -- the deal entry in the push id, the number in the callback. Neither field
        -- can be a push's "<sub>:sms": "job" has no colon, and a subscriber id
        -- never holds the tab of "ref\t<rule>".
        if not kept[pushline] then
          kept[pushline] = true
          redis.call('HSET', pushline, 'job',
            ARGV[b + 19] .. '\t' .. camp .. '\t' .. pool)
        end
        local rk = pushline .. '\t' .. rule
        local ref = refs[rk]
        if not ref then
          ref = { text = redis.call('HGET', pushline, 'ref\t' .. rule), hint = {} }
          if not ref.text then
            ref.text = text
            redis.call('HSET', pushline, 'ref\t' .. rule, text)
          end
          refs[rk] = ref
        end
        local fv = lines[pushline]
        if not fv then
          fv = {}
          lines[pushline] = fv
          line_keys[#line_keys + 1] = pushline
        end
        fv[#fv + 1] = field
        fv[#fv + 1] = td_encode(ref.text, text, ref.hint)
        -- The key exists already: its "job" field was written above in this call.
        expire_once(pushline, ttl + 60)
      end
      if codepush ~= '' then
        -- A redemption by this code is attributed to this push.
        redis.call('SET', codepush, push, 'EX', math.max(ttl, 0) + 7 * 86400)
      end
      -- The first sent push of a subscriber (on any channel) adds one to the treated
      -- audience that reports set against the holdout audience.
      oc_attribute(pushinfo, field, sub, ch, rule, camp, reports, ARGV[b + 21] == '1',
        at)
      -- An A/B test member: its variant, for its clicks and redemptions, counted once.
      if variant ~= '' and redis.call('HSETNX', pushinfo, field .. '\tab',
          rule .. ':' .. variant) == 1 then
        oc_add(reports[1], 'ab:' .. rule .. ':' .. variant .. ':sent', 1)
      end
      -- The text in the behaviour record, and the deal it was, for the replies on
      -- the channel (written for the whole call at the end).
      behav_text(texted, sub, at, ch, deal_id, ARGV[b + 22], ARGV[b + 23])
      expire_once(pushinfo, 30 * 86400)
    elseif outcome ~= 'unknown' and ARGV[b + 20] == '1' then
      -- The pool gave a code that cannot be sent: it leaves the pool for good.
      redis.call('HDEL', codes, field)
      oc_add(stats, 'code:refused', 1)
    elseif outcome ~= 'unknown' then
      oc_return_code(codes, pool, deal, field)
    end
    if ARGV[b + 11] == '1' then
      -- The gateway says the recipient opted out: the same record as a STOP.
      if redis.call('HDEL', consent, sub) == 1 then
        subjson_consent_revoked(epoch)
      end
      local json = redis.call('HGET', subs, sub)
      local newjson = json and subjson_set_consent(json, ch, 'null')
      if newjson and newjson ~= json then
        redis.call('HSET', subs, sub, newjson)
        redis.call('XADD', changes, 'MAXLEN', '~', '100000', '*', 'id', sub, 'op', 'put', unpack(FMT))
      end
      subjson_consent_event(records, sub, ch, 'opted_out', at, 'gateway:' .. gw,
        'http ' .. ARGV[b + 7] .. ' ' .. ARGV[b + 8])
    end
  end
end
pushline_flush()
oc_flush()
for key, ttl in pairs(series_keys) do
  series_ttl(key, ttl)
end
behav_announce(changes, behav_text_flush(KEYS[9], texted))
return n
