-- click.lua: one click on a push's /c/<token> link, atomically (stage: http).
-- KEYS[1] dealentry:<entry>   KEYS[2] clicked:<push id>   KEYS[3] subscribers
-- KEYS[4] subscribers:changes
-- ARGV: push_id, sub, channel, count ("1"; "0" for HEAD: look up only), ttl_s, gain
-- Returns {"gone"} when the deal (or its URL) has expired, else
-- {"ok", url, campaign, deal_id, first ("1" when this click was counted)}.
-- A push's clicks count once: the first sets clicked:<push id> (NX, ttl_s), adds 1 to
-- "clicked" in report:deal:<id>, report:rule:<rule> and report:campaign:<campaign>
-- (rule and campaign of the sent push from pushinfo:<deal id>), and raises the
-- subscriber's engagement: e' = e + (1 - e) x gain, rounded to 6 decimals, written
-- into the stored JSON and announced on subscribers:changes so every mirror reloads it.
local deal_id = redis.call('GET', KEYS[1])
if not deal_id then
  return {'gone'}
end
local dk = 'deal:' .. deal_id
local h = redis.call('HMGET', dk, 'url', 'campaign')
local url, camp = h[1], h[2] or ''
if not url then
  return {'gone'}
end
local push, sub, ch = ARGV[1], ARGV[2], ARGV[3]

--#include subjson

local first = '0'
if ARGV[4] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[5]) then
  first = '1'
  local reports = { 'report:deal:' .. deal_id }
  local info = redis.call('HGET', 'pushinfo:' .. deal_id, sub .. ':' .. ch)
  local rule, pcamp = nil, camp
  if info then
    rule, pcamp = string.match(info, '^([^\t]*)\t(.*)$')
  end
  if rule and rule ~= '' then
    reports[#reports + 1] = 'report:rule:' .. rule
  end
  if pcamp and pcamp ~= '' then
    reports[#reports + 1] = 'report:campaign:' .. pcamp
  end
  for _, r in ipairs(reports) do
    redis.call('HINCRBY', r, 'clicked', 1)
  end
  local gain = tonumber(ARGV[6])
  subjson_engage(KEYS[3], KEYS[4], sub, function(e) return e + (1 - e) * gain end)
end
return {'ok', url, camp, deal_id, first}
