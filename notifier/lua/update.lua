-- update.lua: apply a deal update ("update": true) and ack it (stage: ingest).
-- ORDER UPDATE_KEYS: KEYS[1] deal:<id>   KEYS[2] deals   KEYS[3] deals:dead
-- ARGV: entry, group, exp (epoch s), keep_s, error, payload (first 16 KiB),
--       render ("1": the update carries a price, list price or currency; "0": only
--       a changed title or url would change a text; "-": never re-render, the new
--       expiry is past), title, url
-- A deal is known once its planning has begun ("planning" or "planned" in its
-- hash); the new expiry is written as "exp", which admit and send read before every
-- push, so queued pushes follow it (a past expiry stops them). An update of an
-- unknown deal is dead-lettered "unknown_deal". Returns 'ok' or 'unknown', or, when
-- the update changes what a text renders, {'retext', planned entry, pool, campaign}
-- without acking: the texts are rendered again and retext.lua acks with its last
-- chunk (the expiry is already applied, and applying it again is harmless).
local deal, stream, dead = KEYS[1], KEYS[2], KEYS[3]
local entry, group = ARGV[1], ARGV[2]
if redis.call('HEXISTS', deal, 'planning') == 0 and
    redis.call('HEXISTS', deal, 'planned') == 0 then
  redis.call('XADD', dead, 'MAXLEN', '~', '100000', '*',
    'reason', 'unknown_deal', 'field', 'id', 'error', ARGV[5], 'entry', entry,
    'deal', ARGV[6], unpack(FMT))
  redis.call('XACK', stream, group, entry)
  return 'unknown'
end
redis.call('HSET', deal, 'exp', ARGV[3])
-- Relative TTL: the hash outlives the new expiry by the same margin as at planning.
redis.call('EXPIRE', deal, ARGV[4])
local render = ARGV[7]
if render ~= '-' then
  local d = redis.call('HMGET', deal, 'entry', 'pool', 'campaign', 'title', 'url')
  if d[1] and (render == '1' or d[4] ~= ARGV[8] or d[5] ~= ARGV[9]) then
    return { 'retext', d[1], d[2] or '', d[3] or '' }
  end
end
redis.call('XACK', stream, group, entry)
return 'ok'
