-- plan.lua: write one chunk of a deal's jobs, atomically (stage: plan).
-- KEYS[1] deal:<id>   KEYS[2] deals   KEYS[3] pushes
-- ARGV: entry, chunk, nchunks, keep_s, group, recipients, njobs, code_pool, url,
--       title, campaign, then per job: nfields, field, value, ...
-- The deal hash also keeps the deal's url, title and campaign (click links and
-- reports read them), and dealentry:<entry> names the deal of a push id.
-- "planned" counts recipients in report:deal:<id> (with the last chunk),
-- report:rule:<rule> and report:campaign:<campaign> (with each chunk).
-- The deal hash is the planned-marker and the plan cursor: a chunk below the cursor
-- was written before a crash and is skipped; the last chunk sets "planned" and XACKs
-- the deal entry in the same step, so a deal is planned once however often it is read.
local deal, stream, pushes = KEYS[1], KEYS[2], KEYS[3]
local entry, chunk, nchunks = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local keep_s, group = ARGV[4], ARGV[5]
local recipients, njobs = tonumber(ARGV[6]), tonumber(ARGV[7])

local planned = redis.call('HGET', deal, 'planned')
if planned then
  redis.call('XACK', stream, group, entry)
  return {'duplicate', planned}
end
local owner = redis.call('HGET', deal, 'planning')
if owner and owner ~= entry then
  redis.call('XACK', stream, group, entry)
  return {'duplicate', owner}
end
local cursor = tonumber(redis.call('HGET', deal, 'cursor') or '0')
if chunk < cursor then
  return {'skipped', tostring(cursor)}
end
if chunk > cursor then
  return redis.error_reply('ERR plan cursor is at ' .. cursor .. ', got chunk ' .. chunk)
end

local i = 12
if ARGV[8] ~= '' then
  redis.call('HSET', deal, 'pool', ARGV[8])
end
if chunk == 0 then
  redis.call('HSET', deal, 'url', ARGV[9], 'title', ARGV[10], 'campaign', ARGV[11],
    'entry', entry)
  redis.call('SET', 'dealentry:' .. entry, string.sub(deal, 6), 'EX', keep_s)
end
-- Rule reports count what each rule planned, chunk by chunk (a chunk runs once).
local by_rule = {}
for _ = 1, njobs do
  local n = tonumber(ARGV[i])
  redis.call('XADD', pushes, '*', unpack(ARGV, i + 1, i + 2 * n))
  for f = i + 1, i + 2 * n - 1, 2 do
    if ARGV[f] == 'r' then
      local rule = string.match(ARGV[f + 1], '^[^\t]*\t[^\t]*\t[^\t]*\t([^\t]*)\t')
      if rule then
        by_rule[rule] = (by_rule[rule] or 0) + 1
      end
    end
  end
  i = i + 1 + 2 * n
end
for rule, n in pairs(by_rule) do
  redis.call('HINCRBY', 'report:rule:' .. rule, 'planned', n)
end
if ARGV[11] ~= '' and recipients > 0 then
  redis.call('HINCRBY', 'report:campaign:' .. ARGV[11], 'planned', recipients)
end
redis.call('HSET', deal, 'planning', entry, 'cursor', chunk + 1)
redis.call('HINCRBY', deal, 'jobs', njobs)
redis.call('HINCRBY', deal, 'recipients', recipients)
if chunk == nchunks - 1 then
  redis.call('HSET', deal, 'planned', entry)
  redis.call('HINCRBY', 'report:deal:' .. string.sub(deal, 6), 'planned',
    tonumber(redis.call('HGET', deal, 'recipients') or '0'))
  redis.call('XACK', stream, group, entry)
end
-- TTLs are relative: Redis' clock need not agree with the notifier's.
redis.call('EXPIRE', deal, keep_s)
return {'ok', tostring(chunk + 1)}
