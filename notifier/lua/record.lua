-- record.lua: record the outcomes of a batch of pushes (stage: record).
-- One call per loop pass for every outcome decided in it, so Redis round trips per
-- push stay far below one.
-- KEYS[1] pushes:log   KEYS[2] stats
--   then per outcome (4 each): push:<deal id>, consent:<channel>, deal:<id>,
--   code:<deal id>
-- ARGV: n, then per outcome (16 each): sub, channel, push_id, deal_id, outcome,
--       gateway, provider_id, http_status, detail, now, latency_ms, revoke, rule,
--       campaign, segments (SMS parts of the text sent; 0 for other channels),
--       resend ("" or, for a sent SMS, what sending it again needs: kept in
--       pushline:<deal> until the deal expires, for a 30003 status callback)
-- Counts each final outcome in report:deal:<id>, report:rule:<name> and
-- report:campaign:<name>, and for a sent push keeps pushinfo:<deal id> field
-- <sub>:<ch> = "<rule>\t<campaign>" for click and conversion attribution; a
-- subscriber's first sent push of a deal counts "treated_audience" once.
--   revoke = "1": the provider says the recipient opted out, so consent for the
--   channel ends now: consent:<channel>, the stored JSON's consent (null) and the
--   consent record (consent_log, consent_history) change as for a STOP.
-- Outcome "retry" only moves the state so that a redelivered job may try again.
-- Idempotent: an outcome for a push already in a final state changes nothing, so
-- a batch retried after a lost reply is not logged twice.
-- A per-recipient code that was never delivered goes back to its pool, so "first N
-- buyers" deals reach N people. The jobs are acked separately, once every outcome
-- of a job is recorded.
--#include subjson
local logk, stats = KEYS[1], KEYS[2]
local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local states, consent = KEYS[3 + 4 * i], KEYS[4 + 4 * i]
  local deal, codes = KEYS[5 + 4 * i], KEYS[6 + 4 * i]
  local b = 2 + 16 * i
  local sub, ch, push, deal_id = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local outcome = ARGV[b + 4]
  local field = sub .. ':' .. ch
  local state = redis.call('HGET', states, field)
  local open = state == false or state == 'admitted' or state == 'retry' or
    state == 'delayed' or (state and state:match('^sending'))
  if not open then
    -- Already final: this batch ran once before and only its reply was lost
    -- (Redis restarted); writing it again would log the push twice.
  elseif outcome ~= 'retry' then
    redis.call('HSET', states, field, outcome)
  elseif state and state:match('^sending') then
    -- "retry" only replaces the in-flight mark: the backoff may already have
    -- re-admitted the push (records are batched), and that newer state stands.
    redis.call('HSET', states, field, outcome)
  end
  if open and outcome ~= 'retry' then
    redis.call('XADD', logk, 'MAXLEN', '~', '1000000', '*', 'push', push,
      'deal', deal_id, 'sub', sub, 'channel', ch, 'outcome', outcome,
      'gateway', ARGV[b + 5], 'provider_id', ARGV[b + 6], 'http_status', ARGV[b + 7],
      'detail', ARGV[b + 8], 'at', ARGV[b + 9], 'latency_ms', ARGV[b + 10])
    redis.call('HINCRBY', stats, 'outcome:' .. outcome, 1)
  end
  if open and outcome ~= 'retry' then
    local rule, camp, segs = ARGV[b + 12], ARGV[b + 13], tonumber(ARGV[b + 14]) or 0
    local reports = { 'report:deal:' .. deal_id, 'report:rule:' .. rule }
    if camp ~= '' then
      reports[#reports + 1] = 'report:campaign:' .. camp
    end
    for _, r in ipairs(reports) do
      redis.call('HINCRBY', r, outcome, 1)
      if outcome == 'sent' and segs > 0 then
        redis.call('HINCRBY', r, 'sms_segments', segs)
      end
    end
    local resend = ARGV[b + 15]
    if outcome == 'sent' and resend ~= '' then
      local exp = tonumber(string.match(resend, '^(%d+)\t')) or 0
      local ttl = exp - tonumber(ARGV[b + 9])
      if ttl > 0 then
        redis.call('HSET', 'pushline:' .. deal_id, field, resend)
        redis.call('EXPIRE', 'pushline:' .. deal_id, ttl + 60)
      end
    end
    if outcome == 'sent' then
      local info = 'pushinfo:' .. deal_id
      -- The first sent push of a subscriber (on any channel) adds one to the treated
      -- audience that reports set against the holdout audience.
      if redis.call('HSET', info, field, rule .. '\t' .. camp) == 1 and
          -- ORDER CHANNEL: the other of the two channels, sms and dm.
          redis.call('HEXISTS', info, sub .. ':' .. (ch == 'sms' and 'dm' or 'sms')) == 0 then
        for _, r in ipairs(reports) do
          redis.call('HINCRBY', r, 'treated_audience', 1)
        end
      end
      if redis.call('TTL', info) < 0 then
        redis.call('EXPIRE', info, 30 * 86400)
      end
    end
  end
  if open and ARGV[b + 11] == '1' then
    -- The gateway says the recipient opted out: the same record as a STOP.
    redis.call('HDEL', consent, sub)
    local json = redis.call('HGET', 'subscribers', sub)
    local newjson = json and subjson_set_consent(json, ch, 'null')
    if newjson and newjson ~= json then
      redis.call('HSET', 'subscribers', sub, newjson)
      redis.call('XADD', 'subscribers:changes', 'MAXLEN', '~', '100000', '*', 'id', sub,
        'op', 'put')
    end
    subjson_consent_event(sub, ch, 'opted_out', ARGV[b + 9], 'gateway:' .. ARGV[b + 5],
      'http ' .. ARGV[b + 7] .. ' ' .. ARGV[b + 8])
  end
  if open and outcome ~= 'sent' and outcome ~= 'unknown' and outcome ~= 'retry' then
    local code = redis.call('HGET', codes, field)
    if code then
      local pool = redis.call('HGET', deal, 'pool')
      if pool then
        redis.call('SADD', pool, code)
      end
      redis.call('HDEL', codes, field)
    end
  end
end
return n
