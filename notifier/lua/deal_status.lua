-- deal_status.lua: what Redis holds about one deal, read in one step (stage: report;
-- GET /v1/deals/<id>). It only reads.
-- ORDER STATUS_KEYS (notifier/admin_deals.c): KEYS[1] deal:<id>
-- KEYS[2] report:deal:<id>   KEYS[3] deals:dead   KEYS[4] deals:confirmed
-- KEYS[5] deals   KEYS[6] dealpush:pause   KEYS[7] abtest:<id> (its A/B tests)
-- KEYS[8..] in the sharded layout, the report:deal:<id> of shards 1 .. S-1 (KEYS[2]
--   is shard 0's): the report is their sum, field by field (docs/sharding.md), then
--   the deal:<id> copies of shards 1 .. S-1 (KEYS[1] is shard 0's): one hash of all,
--   "recipients", "jobs" and "ab_released" summed, "planned" only once every shard
--   has planned, "cancelled" and "sold_out" once one shard has them
-- ARGV: deal id, how many dead letters to look through at most
-- Returns {deal hash, report hash, latest dead letter of the deal (its fields and
-- "dead_entry", or {}), the entry a held one was confirmed as (or ""), the payload
-- of the deal's planned entry in deals (or ""), the pause hash, the A/B tests' hash},
-- hashes flat.
-- A dead letter is the deal's when its payload's "id" is the deal id (decoded, or
-- matched in a payload that is not JSON).
local id, limit = ARGV[1], tonumber(ARGV[2])
local nmore = (#KEYS - 7) / 2         -- shards past the first
local deal = redis.call('HGETALL', KEYS[1])
if nmore >= 1 then
  local h, order = {}, {}
  local function take(flat)
    for i = 1, #flat, 2 do
      if h[flat[i]] == nil then
        order[#order + 1] = flat[i]
      end
      h[flat[i]] = h[flat[i]] or flat[i + 1]
    end
  end
  local sum = { recipients = 0, jobs = 0, ab_released = 0 }
  local planned = #deal > 0
  for k = 0, nmore do
    local flat = k == 0 and deal or redis.call('HGETALL', KEYS[7 + nmore + k])
    local one = {}
    for i = 1, #flat, 2 do
      one[flat[i]] = flat[i + 1]
    end
    for f in pairs(sum) do
      sum[f] = sum[f] + (tonumber(one[f]) or 0)
    end
    planned = planned and one.planned ~= nil
    take(flat)
  end
  deal = {}
  for _, f in ipairs(order) do
    if sum[f] then
      h[f] = tostring(sum[f])
    end
    if f ~= 'planned' or planned then
      deal[#deal + 1] = f
      deal[#deal + 1] = h[f]
    end
  end
end
local report = redis.call('HGETALL', KEYS[2])
if #KEYS > 7 then
  local sum, order = {}, {}
  for i = 1, #report, 2 do
    sum[report[i]] = tonumber(report[i + 1]) or report[i + 1]
    order[#order + 1] = report[i]
  end
  for k = 8, 7 + nmore do
    local part = redis.call('HGETALL', KEYS[k])
    for i = 1, #part, 2 do
      local f, v = part[i], tonumber(part[i + 1])
      if sum[f] == nil then
        order[#order + 1] = f
        sum[f] = v or part[i + 1]
      elseif v and type(sum[f]) == 'number' then
        sum[f] = sum[f] + v
      end
    end
  end
  report = {}
  for _, f in ipairs(order) do
    report[#report + 1] = f
    report[#report + 1] = type(sum[f]) == 'number' and string.format('%.17g', sum[f])
      or sum[f]
  end
end
local dead, confirmed, payload = {}, '', ''

local function field(f, name)
  for k = 1, #f, 2 do
    if f[k] == name then return f[k + 1] end
  end
  return nil
end

local last, seen = '+', 0
while seen < limit and #dead == 0 do
  local batch = redis.call('XREVRANGE', KEYS[3], last, '-', 'COUNT', 500)
  if #batch == 0 then break end
  for i = 1, #batch do
    local entry, f = batch[i][1], batch[i][2]
    local p = field(f, 'deal')
    seen = seen + 1
    if p then
      local ok, d = pcall(cjson.decode, p)
      local did
      if ok and type(d) == 'table' and type(d.id) == 'string' then
        did = d.id
      else
        did = string.match(p, '"id"%s*:%s*"([^"\\]*)"')
      end
      if did == id then
        dead = f
        dead[#dead + 1] = 'dead_entry'
        dead[#dead + 1] = entry
        confirmed = redis.call('HGET', KEYS[4], entry) or ''
        break
      end
    end
    last = '(' .. entry
    if seen >= limit then break end
  end
end

local entry = field(deal, 'entry')
if entry then
  local r = redis.call('XRANGE', KEYS[5], entry, entry)
  if #r == 1 then payload = field(r[1][2], 'deal') or '' end
end
return {deal, report, dead, confirmed, payload, redis.call('HGETALL', KEYS[6]),
  redis.call('HGETALL', KEYS[7])}
