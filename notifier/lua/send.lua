-- send.lua: claim admitted recipients for sending, or renew the lease of claimed ones,
-- right before the requests go out (stage: send). One call per dispatch batch.
-- ORDER SEND_KEYS (include/pushline.h):
-- KEYS[1] pushes:log   KEYS[2] stats   KEYS[3] pushes (the job stream)
-- KEYS[4] consent:epoch (moves whenever a consent is taken away)
-- KEYS[5] delayed (zset of pushes waiting for their window)
-- KEYS[6] {sK}owner, the shard's owner record (own.lua; "" = no ownership: every
--   notifier serves every shard)
--   then per recipient (ORDER SEND_RKEYS, 12 each): push:<deal>, deal:<deal>,
--   consent:<channel>, code:<deal>, report:deal:<id>, report:rule:<rule>,
--   report:campaign:<c> ("" = none), the deal's code pool ("" = none; admit.lua made
--   sure the job names it; sharded, the shard's stash of it, docs/sharding.md 4c),
--   then the caps' keys as admit.lua
--   takes them: texts:<sub> (daily cap), camp:<campaign>:<sub>, the law's cap key
--   ("" = that cap does not apply), then retext:<deal> (the texts an update rendered
--   again, retext.lua; read only once the deal hash has a "version")
-- ARGV: now, consumer, group, n, epoch (of this consumer's lease on the shard; with
--       KEYS[6] only), then per recipient (ORDER SEND_RARGS, 11 each): sub,
--       channel, push_id, deal_id, expires_at, idempotent ("1" when the reserved
--       gateway takes an Idempotency-Key, so a crash mid-request may simply send
--       again), mode, job (the recipient's entry on the job stream), epoch
--       (consent:epoch when admit.lua checked the consent: unchanged since, no
--       consent was taken away, and the check is not repeated), not_before (the
--       legal window and quiet hours again, on the notifier's clock right now: 0 = open
--       now and for the next seconds; -1 = never; -2 = the subscriber is gone; else
--       when it opens), member (for a push that must wait: "deal\tentry\texp\tcamp\t
--       line", as admit.lua keeps it in delayed; "" otherwise), day_cap, day_start (when
--       the recipient's local day of now began), campaign_cap, law_cap, law_window:
--       the caps as admit.lua takes them, computed for the moment of sending
-- A push whose window closed while it waited for a gateway (a rate limit, a full
-- queue) does not leave: it waits in delayed for the next window as "deferred" (it
-- was admitted, counted and holds its code: admit.lua lets it through again without
-- counting it twice), or ends "quiet_hours" when the deal expires first.
--   mode "claim": "admitted" becomes "sending:<consumer>" or "sendingw:<consumer>"
--     (compare-and-set: of two holders, one wins); no state at all is "readmit" (the
--     admit was lost, as in a failover: the sender admits it again); anything else
--     is "skip".
--   mode "renew": the sender's lease ran out before the request left (the process
--     was stalled): the push must still be "sending(w):<consumer>" and its job still
--     pending for this consumer, else "lost" (the job was taken over: the push goes
--     back to "admitted", since this consumer never sent it, and the new owner sends
--     it). When it holds, the job's idle time is reset (XCLAIM JUSTID), which gives
--     the sender a fresh lease.
-- The fence (docs/sharding.md 4d): with KEYS[6], a consumer that no longer holds the
-- shard's lease under ARGV[5] (another notifier acquired it since) gets "lost" for
-- every recipient, in both modes; a push it holds for a renewal goes back to
-- "admitted" (no request left: the lease check comes before the request), for the
-- new owner to send.
-- In both modes a deal cancelled or expired since admit (the deal hash's "exp" from an
-- update overrides expires_at), or a consent revoked since admit (a STOP that came
-- while the push waited for a gateway slot), stops here, the last moment before the
-- gateway: its code, if it took one, goes back to the pool, and the outcome is logged
-- and counted in the reports.
-- The caps hold here, at the moment a text leaves (lib/outcome.lua oc_caps): a claim
-- over a cap ends daily_cap, campaign_cap or legal_cap (its code back to the pool);
-- one within them is counted, in the same atomic step as its "sending" mark. A push
-- that ends here, is deferred, or is handed back (lost) gives back any place it
-- holds: it did not leave. A push claimed again (after a retry) keeps the place it
-- took.
-- Returns per recipient: "send\t<expires_at>" (the deal's current expiry), or
-- "send\t<expires_at>\t<text>" when an update rendered the push's text again (the
-- sender sends that text, with the code's place as planned, instead of its own),
-- cancelled, expired, no_consent, no_subscriber, quiet_hours, deferred, daily_cap,
-- campaign_cap, legal_cap, skip (not ours to send) or lost.
--#include outcome
local logk, stats, jobs, delayed = KEYS[1], KEYS[2], KEYS[3], KEYS[5]
local epoch = redis.call('GET', KEYS[4]) or '0'
local now, consumer, group, n = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local RK, RA = 12, 16
local fenced = false
if KEYS[6] ~= '' then
  local o = redis.call('HMGET', KEYS[6], 'owner', 'epoch')
  fenced = o[1] ~= consumer or o[2] ~= ARGV[5]
end
local deals = {}     -- deal key -> { cancelled, exp override, version }
local owned = {}     -- job entry -> true / false, looked up once per call

local function deal_of(key)
  local d = deals[key]
  if not d then
    d = redis.call('HMGET', key, 'cancelled', 'exp', 'version')
    deals[key] = d
  end
  return d
end

local function job_owned(entry)
  local o = owned[entry]
  if o == nil then
    local p = redis.call('XPENDING', jobs, group, entry, entry, 1)
    o = p[1] ~= nil and p[1][2] == consumer
    if o then
      redis.call('XCLAIM', jobs, group, consumer, 0, entry, 'JUSTID')
    end
    owned[entry] = o
  end
  return o
end

local out = {}
for i = 0, n - 1 do
  local kb, b = 7 + RK * i, 6 + RA * i
  local states, deal, consent, codes = KEYS[kb], KEYS[kb + 1], KEYS[kb + 2], KEYS[kb + 3]
  local pool = KEYS[kb + 7]
  local sub, ch, push = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local deal_id, exp_s, idem = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local mode, entry, admitted_epoch = ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
  local not_before, member = oc_num(ARGV[b + 9]) or -1, ARGV[b + 10]
  local capk = { day = KEYS[kb + 8], camp = KEYS[kb + 9], law = KEYS[kb + 10] }
  local retext = KEYS[kb + 11]
  local field = sub .. ':' .. ch
  local mark = 'sending:'
  if idem == '1' then
    mark = 'sendingw:'
  end
  local d = deal_of(deal)
  if d[2] and oc_num(d[2]) then
    exp_s = d[2]
  end
  local exp = oc_num(exp_s)
  local state = redis.call('HGET', states, field)
  local verdict
  local held = mode == 'renew' and state == mark .. consumer
  if fenced then
    -- a renewal's push was never sent (its lease ran out first): the new owner's
    -- to send. A claim's mark may be a restarted process's own (own.lua lets one
    -- take its shard back under the same id): left as it is.
    if held then
      redis.call('HSET', states, field, 'admitted')
    end
    verdict = 'lost'
  elseif mode == 'renew' then
    if not held then
      verdict = 'lost'
    elseif not job_owned(entry) then
      redis.call('HSET', states, field, 'admitted')
      verdict = 'lost'
    end
  elseif not state then
    -- Admitted, and the mark is gone: a failover lost the admit (admit.lua's writes
    -- are not waited for), or the push's record was erased. Nothing was claimed, so
    -- nothing left: the sender admits it again, and admit.lua decides afresh.
    verdict = 'readmit'
  elseif state ~= 'admitted' then
    verdict = 'skip'
  end
  if verdict then
    -- not ours
  elseif d[1] then
    verdict = 'cancelled'
  elseif now >= exp then
    verdict = 'expired'
  elseif admitted_epoch ~= epoch and redis.call('HEXISTS', consent, sub) == 0 then
    verdict = 'no_consent'
  elseif not_before == -2 then
    verdict = 'no_subscriber'
  elseif not_before == -1 or not_before == -3 or (not_before > 0 and not_before >= exp) then
    verdict = 'quiet_hours'
  elseif not_before > 0 then
    verdict = 'deferred'
  elseif mode == 'claim' then
    local caps = { day_cap = oc_num(ARGV[b + 11]), day_start = oc_num(ARGV[b + 12]),
      camp_cap = oc_num(ARGV[b + 13]), law_cap = oc_num(ARGV[b + 14]),
      law_window = oc_num(ARGV[b + 15]) }
    verdict = oc_caps(capk, caps, push, now, true) or 'send'
  else
    verdict = 'send'
  end
  if verdict ~= 'send' and verdict ~= 'skip' and verdict ~= 'readmit' and
      (verdict ~= 'lost' or held) then
    -- It does not leave now: a place it took at an earlier claim is free again.
    oc_cap_give_back({ capk.day, capk.camp, capk.law }, push)
  end
  if verdict == 'send' then
    if mode == 'claim' then
      redis.call('HSET', states, field, mark .. consumer)
    end
    -- Never updated (no version): no further command for the push.
    local text = d[3] and redis.call('HGET', retext, field)
    if text then
      out[#out + 1] = 'send\t' .. exp_s .. '\t' .. text
    else
      out[#out + 1] = 'send\t' .. exp_s
    end
  elseif verdict == 'deferred' then
    redis.call('HSET', states, field, 'deferred')
    redis.call('ZADD', delayed, not_before, member)
    oc_add(stats, 'delayed', 1)
    out[#out + 1] = verdict
  else
    if verdict ~= 'skip' and verdict ~= 'lost' and verdict ~= 'readmit' then
      oc_return_code(codes, pool, deal, field)
      local reports = { KEYS[kb + 4], KEYS[kb + 5], KEYS[kb + 6] }
      oc_final(states, logk, stats, reports, field, push, deal_id, sub, ch, verdict,
        ARGV[1], not_before == -3 and verdict == 'quiet_hours' and
        { 'detail', 'no_common_window' } or nil)
    end
    out[#out + 1] = verdict
  end
end
oc_flush()
return out
