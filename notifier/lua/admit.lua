-- admit.lua: decide, atomically, which recipients of one job may be sent now
-- (stage: admit). One call per job, so Redis round trips per push stay far below one.
-- KEYS[1] deal:<id>   KEYS[2] push:<deal id>   KEYS[3] consent:sms   KEYS[4] consent:dm
-- KEYS[5] pushes:log  KEYS[6] stats   KEYS[7] delayed (zset of deferred recipients)
-- ARGV: now, expires_at, keep_s (seconds to keep the state), deal_id, deal_entry, campaign ("" = none),
--       code_pool ("" = none), consumer, n,
--       then per recipient (10 each): sub, channel, push_id, own_retry, not_before,
--       day, day_cap, campaign_cap, line, rule
--   not_before: 0 = may be sent now; -1 = never (quiet hours cover the whole legal
--     window); -2 = the subscriber no longer exists; else the epoch second when the
--     recipient's quiet hours / legal window end (the notifier computes it in the
--     subscriber's time zone, which Lua cannot).
--   day: the subscriber's local date YYYYMMDD; day_cap: max pushes that local day
--     (0 = none); campaign_cap: max pushes per rolling 24 h on this campaign (0 =
--     none); line: the job's recipient line, kept for a deferred recipient. Only
--     a push's first admission (state absent or "delayed") is checked against and
--     counted under the caps, and counted "admitted" in the reports.
-- States per (subscriber, channel) in push:<deal>: absent, "admitted", "retry" and
-- "delayed" (the gateway certainly does not have it) admit again.
-- "sending:<consumer>" (send.lua set it just before the request) admits only as
-- own_retry = "1" from that same consumer, which holds the definite failure of the
-- request; otherwise a crash left it unknown whether the gateway took it, and a text
-- is never sent twice: "unknown". "sendingw:<consumer>" is the same through an
-- idempotent gateway (webhook): it is simply sent again, with the same
-- Idempotency-Key (the push id). Anything else is final.
-- A deal with a code pool takes one code per admitted push (SPOP) and keeps it in
-- code:<deal> so a re-admitted push reuses it; an empty pool marks the deal sold out
-- and stops its remaining pushes.
-- Caps count a push when it is admitted.
-- Returns one verdict per recipient: "admit" or "admit\t<code>", "delayed", or a
-- final one (expired, cancelled, sold_out, no_consent, no_subscriber, quiet_hours,
-- daily_cap, campaign_cap, duplicate, unknown), each final one logged here.
local deal, states, logk, stats, delayed = KEYS[1], KEYS[2], KEYS[5], KEYS[6], KEYS[7]
local consent = { sms = KEYS[3], dm = KEYS[4] }
local now, exp, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local deal_id, deal_entry, campaign = ARGV[4], ARGV[5], ARGV[6]
local pool, consumer = ARGV[7], ARGV[8]
-- A job re-queued for quiet hours (delay.lua) or a retry may not name the pool;
-- plan.lua kept it in the deal hash.
if pool == '' then
  pool = redis.call('HGET', deal, 'pool') or ''
end
local n = tonumber(ARGV[9])
local W = 10
local codes = 'code:' .. deal_id

local global = nil
if now >= exp then
  global = 'expired'
elseif redis.call('HEXISTS', deal, 'cancelled') == 1 then
  global = 'cancelled'
elseif redis.call('HEXISTS', deal, 'sold_out') == 1 then
  global = 'sold_out'
end

-- A push that ends here: logged, and counted in the deal's, rule's and campaign's
-- reports, so that every planned push shows up in the funnel.
local function final(push, sub, ch, outcome, rule)
  redis.call('XADD', logk, 'MAXLEN', '~', '1000000', '*', 'push', push,
    'deal', deal_id, 'sub', sub, 'channel', ch, 'outcome', outcome, 'at', ARGV[1])
  redis.call('HINCRBY', stats, 'outcome:' .. outcome, 1)
  redis.call('HINCRBY', 'report:deal:' .. deal_id, outcome, 1)
  redis.call('HINCRBY', 'report:rule:' .. rule, outcome, 1)
  if campaign ~= '' then
    redis.call('HINCRBY', 'report:campaign:' .. campaign, outcome, 1)
  end
end

local reopen = { admitted = true, retry = true, delayed = true }

-- Pushes in the rolling 24 hours before now recorded in a campaign zset.
local function pushes_last_day(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 86400)
  return redis.call('ZCARD', key)
end

local out = {}
for i = 0, n - 1 do
  local b = 10 + W * i
  local sub, ch, push, own = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local not_before, day = tonumber(ARGV[b + 4]), ARGV[b + 5]
  local day_cap, camp_cap, line = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7]), ARGV[b + 8]
  local rule = ARGV[b + 9]
  local field = sub .. ':' .. ch
  local state = redis.call('HGET', states, field)
  local daykey = 'cap:' .. sub .. ':' .. day
  local campkey = 'camp:' .. campaign .. ':' .. sub
  local verdict
  -- A push not admitted before (new, or waiting out quiet hours) takes a place
  -- under the caps and counts in the reports; a retry, a 30003 resend or a
  -- redelivered job is the same push again and does neither.
  local first = state == false or state == 'delayed'
  local sending, who = nil, nil
  if state then
    sending, who = state:match('^(sendingw?):(.*)$')
  end
  if sending == 'sending' and not (own == '1' and who == consumer) then
    verdict = 'unknown'
  elseif state and not sending and not reopen[state] then
    verdict = 'duplicate'
  elseif global then
    verdict = global
  elseif not_before == -2 then
    verdict = 'no_subscriber'
  elseif not consent[ch] or redis.call('HEXISTS', consent[ch], sub) == 0 then
    verdict = 'no_consent'
  elseif not_before == -1 or (not_before > now and not_before >= exp) then
    verdict = 'quiet_hours'
  elseif not_before > now then
    verdict = 'delayed'
  elseif first and day_cap > 0 and tonumber(redis.call('GET', daykey) or '0') >= day_cap then
    verdict = 'daily_cap'
  elseif first and camp_cap > 0 and campaign ~= '' and
      pushes_last_day(campkey) >= camp_cap then
    verdict = 'campaign_cap'
  else
    verdict = 'admit'
  end
  local code = nil
  if verdict == 'admit' and pool ~= '' then
    code = redis.call('HGET', codes, field)
    if not code then
      code = redis.call('SPOP', pool)
      if code then
        redis.call('HSET', codes, field, code)
        -- A redemption by this code is attributed to this push.
        redis.call('SET', 'codepush:' .. code, push, 'EX', keep)
        if redis.call('TTL', codes) < 0 then
          redis.call('EXPIRE', codes, keep)
        end
      else
        redis.call('HSET', deal, 'sold_out', ARGV[1])
        global = 'sold_out'
        verdict = 'sold_out'
      end
    end
  end
  if verdict == 'admit' then
    if first then
      redis.call('HINCRBY', 'report:deal:' .. deal_id, 'admitted', 1)
      redis.call('HINCRBY', 'report:rule:' .. rule, 'admitted', 1)
      if campaign ~= '' then
        redis.call('HINCRBY', 'report:campaign:' .. campaign, 'admitted', 1)
      end
      if day_cap > 0 then
        redis.call('INCR', daykey)
        redis.call('EXPIRE', daykey, 172800)
      end
    end
    redis.call('HSET', states, field, 'admitted')
    if first and camp_cap > 0 and campaign ~= '' then
      redis.call('ZADD', campkey, now, push)
      redis.call('EXPIRE', campkey, 86400)
    end
  elseif verdict == 'delayed' then
    -- Back on "pushes" when quiet hours end (delay.lua moves it), as a job of one.
    redis.call('HSET', states, field, 'delayed')
    redis.call('ZADD', delayed, not_before,
      deal_id .. '\t' .. deal_entry .. '\t' .. exp .. '\t' .. campaign .. '\t' .. line)
    redis.call('HINCRBY', stats, 'delayed', 1)
  elseif verdict == 'duplicate' then
    redis.call('HINCRBY', stats, 'skip:duplicate', 1)
  else
    redis.call('HSET', states, field, verdict)
    final(push, sub, ch, verdict, rule)
  end
  if code then
    out[#out + 1] = 'admit\t' .. code
  else
    out[#out + 1] = verdict
  end
end
if redis.call('TTL', states) < 0 then
  redis.call('EXPIRE', states, keep)
end
return out
