-- admit.lua: decide, atomically, which recipients of one job may be sent now
-- (stage: admit). One call per job, so Redis round trips per push stay far below one.
-- ORDER ADMIT_KEYS (include/pushline.h):
-- KEYS[1] deal:<id>   KEYS[2] push:<deal id>   KEYS[3] consent:sms   KEYS[4] consent:dm
-- KEYS[5] pushes:log  KEYS[6] stats   KEYS[7] delayed (zset of deferred recipients)
-- KEYS[8] code:<deal id>   KEYS[9] the deal's code pool ("" = the job names none; when
--   the deal hash says the deal has one, nothing is written and the answer is
--   {"!pool", <its name>}: the caller calls again with that key)
-- KEYS[10] report:deal:<id>   KEYS[11] report:campaign:<c> ("" = none)
-- KEYS[12] resolve:due   KEYS[13] resolve:info   KEYS[14] consent:epoch
-- KEYS[15] {sK}codestate in the sharded layout ("" in the single-instance one): then
--   KEYS[9] is the shard's stash of the pool, {sK}codestash:<deal>:<pool>, not the
--   pool itself (docs/sharding.md 4c)
-- KEYS[16] {sK}owner, the shard's owner record (own.lua; "" = no ownership)
--   then per recipient (ORDER ADMIT_RKEYS, 5 each): texts:<sub> ("" = no daily cap),
--   camp:<campaign>:<sub> ("" = no campaign cap), report:rule:<rule>, the key of the
--   law's cap of the recipient's place ("" = none; texts:<sub>, or capcamp:/capdeal:
--   for cap_scope = campaign), link:<code> of the push's short link ("" = its text
--   has none)
-- ARGV: now, expires_at, keep_s (seconds to keep the state), deal_id, deal_entry,
--       campaign ("" = none), consumer, n, resolve_at (when an unknown push is first
--       looked up), link_keep_s (how long past the deal's end a short link is kept),
--       code_field ("<deal>\t<pool>": the stash's field in codestate; "" = none),
--       pool_empty ("1": a reservation has just found the pool empty),
--       epoch (of this consumer's lease on the shard; with KEYS[16] only),
--       then per recipient (ORDER ADMIT_RARGS, 12 each): sub, channel, push_id,
--       own_retry, not_before, day_cap, campaign_cap, line, rule, day_start, law_cap,
--       law_window
--   not_before: 0 = may be sent now; -1 = never (quiet hours cover the whole legal
--     window); -2 = the subscriber no longer exists; -3 = never (the legal windows of
--     the recipient's places never meet); else the epoch second when the
--     recipient's quiet hours / legal window / the deal's starts_at end (the notifier
--     computes it in the subscriber's time zone, which Lua cannot).
--   day_cap: max texts that local day (0 = none), day_start: when that day began;
--     campaign_cap: max texts per rolling 24 h on this campaign (0 = none); law_cap:
--     max texts per law_window seconds by the law of the place (0 = none); line: the
--     job's recipient line, kept for a deferred recipient, and the source of an
--     unknown push's text ("" when not_before is 0 or negative in a job read for the
--     first time: the notifier knows then that it cannot be deferred, and no earlier
--     claim can have left the push "sending"). The caps count texts when
--     they leave (send.lua, lib/outcome.lua oc_caps): here they are only a
--     pre-filter, on a push's first admission (state absent or "delayed"), against
--     the texts already gone; nothing is counted here. A first admission is counted
--     "admitted" in the reports.
-- The deal hash's "exp" (set by a deal update) overrides expires_at.
-- States per (subscriber, channel) in push:<deal>: absent, "admitted", "retry",
-- "delayed" and "deferred" (the gateway certainly does not have it) admit again.
-- "sending:<consumer>" (send.lua set it just before the request) admits only as
-- own_retry = "1" from that same consumer, which holds the definite failure of the
-- request; otherwise a crash left it unknown whether the gateway took it, and a text
-- is never sent twice: "unknown", queued for resolution with the provider.
-- "sendingw:<consumer>" is the same through an idempotent gateway (webhook): it is
-- simply sent again, with the same Idempotency-Key (the push id). Anything else is
-- final.
-- An admitted push with a short link stores its push id in link:<code> until
-- link_keep_s past the deal's end (the click window), so the link finds its push.
-- A deal with a code pool takes one code per admitted push (SPOP) and keeps it in
-- code:<deal> so a re-admitted push reuses it, also after the pool ran dry; an empty
-- pool marks the deal sold out and stops its remaining pushes. A push that ends here
-- gives its code back.
-- Sharded (KEYS[15] set), codes come from the shard's stash, which the pool fills by
-- reservations: before anything is written, the recipients that may take a code now
-- are counted, and when the stash holds fewer, the answer is {"!codes", n, c} with
-- nothing else written: the intent n (c codes) is open in codestate, the caller
-- reserves them (deliver_codes.c) and calls again. An intent already open is answered
-- again. With pool_empty = "1" the stash is all there is, and a push it cannot serve
-- ends sold_out; the shard's copy of the deal saying sold_out stops nothing by
-- itself, since the pool, shared by every shard, decides.
-- Returns one verdict per recipient: "admit" or "admit\t<code>", "delayed", or a
-- final one (expired, cancelled, sold_out, no_consent, no_subscriber, quiet_hours,
-- daily_cap, campaign_cap, legal_cap, duplicate, unknown), each final one logged here
-- (quiet_hours for -3 with detail no_common_window); then,
-- last, consent:epoch as it was when consent was checked (send.lua checks again only
-- when it has moved since).
--#include outcome
--#include codestate
local deal, states, logk, stats, delayed = KEYS[1], KEYS[2], KEYS[5], KEYS[6], KEYS[7]
local consent = { sms = KEYS[3], dm = KEYS[4] }
local codes, pool = KEYS[8], KEYS[9]
local rdeal, rcamp, due, info = KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local epoch = redis.call('GET', KEYS[14]) or '0'
local now, exp, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local deal_id, deal_entry, campaign = ARGV[4], ARGV[5], ARGV[6]
local consumer, n, resolve_at = ARGV[7], tonumber(ARGV[8]), ARGV[9]
local link_keep = tonumber(ARGV[10])
local cstate, cfield, pool_empty = KEYS[15], ARGV[11], ARGV[12] == '1'
local stashed = cstate ~= '' and pool ~= ''
local RK, RA, RK0, RA0 = 5, 12, 17, 14
local REPORT_KEEP_S = 90 * 86400

-- The fence (docs/sharding.md 4d): a consumer that no longer holds the shard's lease
-- under ARGV[13] admits nothing and writes nothing; the job is the new owner's.
if KEYS[16] ~= '' then
  local o = redis.call('HMGET', KEYS[16], 'owner', 'epoch')
  if o[1] ~= consumer or o[2] ~= ARGV[13] then
    return { '!fenced', o[1] or '' }
  end
end

local d = redis.call('HMGET', deal, 'cancelled', 'sold_out', 'exp', 'pool')
if d[3] then
  exp = tonumber(d[3]) or exp
end
if pool == '' and d[4] and d[4] ~= '' and
    (cstate ~= '' or string.sub(d[4], 1, 6) ~= 'quota:') then
  -- A job re-queued without its pool's name (delay.lua): every key comes from KEYS,
  -- so the caller is told the name and calls again. A quota's implicit pool
  -- (docs/sharding.md 4c) means nothing in the single-instance layout (a deal
  -- migrated with --to-single): no pool there.
  return { '!pool', d[4] }
end
local global = nil
if now >= exp then
  global = 'expired'
elseif d[1] then
  global = 'cancelled'
elseif d[2] and not stashed then
  global = 'sold_out'
end

-- "deferred": admitted once, then held back at send for its window (send.lua).
local reopen = { admitted = true, retry = true, delayed = true, deferred = true }

if stashed and not global then
  -- The stash is in use: no give-back while it is (code_give.lua).
  local s = cs_get(cstate, cfield)
  s.used, s.exp = now, exp
  cs_put(cstate, cfield, s)
end
if stashed and not global and not pool_empty then
  -- Every recipient that may take a code now, counted high (a cap may still say
  -- no): what is not used goes back to the pool.
  local need = 0
  for i = 0, n - 1 do
    local b = RA0 + RA * i
    local sub, ch = ARGV[b], ARGV[b + 1]
    local field = sub .. ':' .. ch
    local state = redis.call('HGET', states, field)
    local nb = oc_num(ARGV[b + 4])
    if (not state or reopen[state]) and nb >= 0 and nb <= now and consent[ch] and
        redis.call('HEXISTS', consent[ch], sub) == 1 and
        not redis.call('HGET', codes, field) then
      need = need + 1
    end
  end
  local have = redis.call('SCARD', pool)
  if need > have then
    local s = cs_get(cstate, cfield)
    if s.rn == 0 then
      s.resn = s.resn + 1
      s.rn, s.rc = s.resn, need - have
      cs_put(cstate, cfield, s)
    end
    return { '!codes', s.rn, s.rc }
  end
end

local out = {}
for i = 0, n - 1 do
  local b, kb = RA0 + RA * i, RK0 + RK * i
  local rrule = KEYS[kb + 2]
  local capk = { day = KEYS[kb], camp = KEYS[kb + 1], law = KEYS[kb + 3] }
  local sub, ch, push, own = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local not_before = oc_num(ARGV[b + 4])
  local line = ARGV[b + 7]
  local rule = ARGV[b + 8]
  local field = sub .. ':' .. ch
  -- A push seen for the first time (the common case) is marked admitted at once, in
  -- the command that finds it new; every verdict but "admit" writes its own state
  -- over the mark below, in this same script.
  local marked = redis.call('HSETNX', states, field, 'admitted') == 1
  local state = false
  if not marked then
    state = redis.call('HGET', states, field)
  end
  local reports = { rdeal, rrule, rcamp }
  local verdict
  -- A push not admitted before (new, or waiting out quiet hours) takes a place
  -- under the caps and counts in the reports; a retry, a 30003 resend or a
  -- redelivered job is the same push again and does neither.
  local first = state == false or state == 'delayed'
  local sending, who = nil, nil
  if state then
    sending, who = state:match('^(sendingw?):(.*)$')
  end
  -- A push that already holds a code goes on with it even when the pool is dry.
  local held = nil
  if state and pool ~= '' then
    held = redis.call('HGET', codes, field)
  end
  if sending == 'sending' and not (own == '1' and who == consumer) then
    verdict = 'unknown'
  elseif state and not sending and not reopen[state] then
    verdict = 'duplicate'
  elseif global and not (global == 'sold_out' and held) then
    verdict = global
  elseif not_before == -2 then
    verdict = 'no_subscriber'
  elseif not consent[ch] or redis.call('HEXISTS', consent[ch], sub) == 0 then
    verdict = 'no_consent'
  elseif not_before == -1 or not_before == -3 or (not_before > now and not_before >= exp) then
    verdict = 'quiet_hours'
  elseif not_before > now then
    verdict = 'delayed'
  else
    verdict = first and oc_caps(capk, { day_cap = oc_num(ARGV[b + 5]),
      day_start = oc_num(ARGV[b + 9]), camp_cap = oc_num(ARGV[b + 6]),
      law_cap = oc_num(ARGV[b + 10]), law_window = oc_num(ARGV[b + 11]) }, push, now,
      false) or 'admit'
  end
  local code = held
  if verdict == 'admit' and pool ~= '' and not code then
    code = redis.call('SPOP', pool)
    if code then
      redis.call('HSET', codes, field, code)
      if redis.call('TTL', codes) < 0 then
        redis.call('EXPIRE', codes, keep)
      end
    else
      -- Sharded, reached only with pool_empty (the count above holds codes for
      -- the rest): this shard's copy says so, for the deal's status.
      redis.call('HSET', deal, 'sold_out', ARGV[1])
      global = 'sold_out'
      verdict = 'sold_out'
    end
  end
  if verdict == 'admit' then
    if first then
      oc_add(rdeal, 'admitted', 1)
      oc_add(rrule, 'admitted', 1)
      oc_add(rcamp, 'admitted', 1)
    end
    if not marked then
      redis.call('HSET', states, field, 'admitted')
    end
    if KEYS[kb + 4] ~= '' then
      redis.call('SET', KEYS[kb + 4], push, 'EX', math.max(exp - now, 0) + link_keep)
    end
    if code then
      out[#out + 1] = 'admit\t' .. code
    else
      out[#out + 1] = 'admit'
    end
  elseif verdict == 'delayed' then
    -- Back on "pushes" when the window opens (delay.lua moves it), as a job of one.
    redis.call('HSET', states, field, 'delayed')
    redis.call('ZADD', delayed, not_before,
      deal_id .. '\t' .. deal_entry .. '\t' .. exp .. '\t' .. campaign .. '\t' .. line)
    oc_add(stats, 'delayed', 1)
    out[#out + 1] = verdict
  elseif verdict == 'duplicate' then
    oc_add(stats, 'skip:duplicate', 1)
    out[#out + 1] = verdict
  else
    oc_final(states, logk, stats, reports, field, push, deal_id, sub, ch, verdict, ARGV[1],
      not_before == -3 and verdict == 'quiet_hours' and { 'detail', 'no_common_window' } or nil)
    if verdict == 'unknown' then
      -- Another notifier claimed it and is gone: the provider may have it. Its body
      -- is the line's text with the code the push holds put in, as pushline_render
      -- did at send (each run of \r is the code's place), so the resolver looks it
      -- up in the gateways' lists; the deal's landing time bounds the attempt.
      local to, text = string.match(line,
        '^[^\t]*\t[^\t]*\t([^\t]*)\t[^\t]*\t(.*)$')
      local code = held or ''
      if string.find(pool, ':quota:', 1, true) and
          string.match(code, '^%*%d+%.%d+%.%d+%.%d+$') then
        code = ''      -- a quota's token, never put in a text (deliver_send.c)
      end
      text = string.gsub(text or '', '\r+', function() return code end)
      -- The deal's landing on the notifier's clock (its entry id is Redis' clock, and
      -- the resolver takes the notifier's offset off again): the lookup's lower bound.
      local landed = math.floor((tonumber(string.match(deal_entry, '^(%d+)')) or 0) / 1000)
      local started = now - (tonumber(redis.call('TIME')[1]) - landed)
      oc_queue_unknown(due, info, push, resolve_at, deal_id, sub, ch, '', to or '',
        tostring(math.max(started, 0)), rule, campaign, text)
    else
      oc_return_code(codes, pool, deal, field)
      if not first then
        -- Claimed before (a retry): the place it may hold under the caps is free.
        oc_cap_give_back({ capk.day, capk.camp, capk.law }, push)
      end
    end
    out[#out + 1] = verdict
  end
end
if redis.call('TTL', states) < 0 then
  redis.call('EXPIRE', states, keep)
end
oc_flush()
-- The deal's report outlives its pushes (attribution runs 30 days past a push) and
-- then goes: REPORT_KEEP_S past the deal's expiry, set once.
if redis.call('TTL', rdeal) == -1 then
  redis.call('EXPIRE', rdeal, math.max(exp - now, 0) + REPORT_KEEP_S)
end
out[#out + 1] = epoch
return out
